"""The writer stage: the run directory, the manifest's common parts, the run files and report, the console table.

Every entry point (audit, blind, infer-dataset) names its run directory, opens and closes its manifest the same
way and returns an ``AuditResult`` (or the dataset-inference results) built here.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miakit import __version__
from miakit.data import MembershipDataset

PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "pandas", "scikit-learn", "scipy", "pyarrow")


@dataclass
class AuditResult:
    """What ``audit`` and ``blind`` return: per-attack metrics and per-sample scores as DataFrames, plus the run
    files."""

    metrics: pd.DataFrame
    scores: pd.DataFrame
    results: dict[str, Any]
    manifest: dict[str, Any]
    run_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def report_path(self) -> Path | None:
        return self.run_dir / "report.html" if self.run_dir else None


def run_directory(out: str | None, suffix: str = "") -> Path:
    """``out``, else ``runs/<local time><suffix>``."""
    return Path(out) if out else Path("runs") / (_dt.datetime.now().strftime("%Y%m%d-%H%M%S") + suffix)


# Every file a run writes into its folder; a rerun into the folder of a previous run removes these (and only
# these), so no file of the earlier run (a documents.csv the new run does not write) is taken for the new one's.
RUN_FILES = (
    "results.json",
    "scores.csv",
    "scores.parquet",
    "manifest.json",
    "roc.png",
    "report.html",
    "documents.csv",
    "pvalues.png",
)


def is_previous_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run miakit wrote: a manifest.json object with miakit's version and kind."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "miakit_version" in manifest and "kind" in manifest


def check_out(out: str | None, suffix: str = "") -> Path:
    """The run folder, checked before any work: not a file, writable, and empty or a previous miakit run
    (whose files are replaced at the end); anything else is a MiakitError and nothing is written."""
    from miakit.errors import MiakitError

    run_dir = run_directory(out, suffix)
    named = f"The run folder '{run_dir}' (--out)"
    if run_dir.exists() and not run_dir.is_dir():
        raise MiakitError(f"{named} is a file, not a folder; give a new or empty folder for the run's files.")
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise MiakitError(f"{named} cannot be created: '{existing}' is a file, not a folder.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".miakit-write-check-", dir=existing)
    except OSError as exc:
        raise MiakitError(
            f"{named} is not writable: cannot create files in '{existing}' ({exc.strerror or exc}). Choose a "
            "folder you can write to."
        ) from None
    os.close(fd)
    os.unlink(probe)
    if run_dir.is_dir() and any(run_dir.iterdir()) and not is_previous_run(run_dir):
        raise MiakitError(
            f"{named} is not empty and holds no miakit run (no manifest.json written by miakit). Choose a new or "
            "empty folder, so that no file of yours is overwritten."
        )
    return run_dir


def clear_previous_run(run_dir: Path) -> None:
    """Remove the files of the miakit run in ``run_dir`` (only those miakit writes), before writing a new run."""
    if not run_dir.is_dir() or not is_previous_run(run_dir):
        return
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
        for tmp in run_dir.glob(f".{name}.*.tmp"):  # left by an interrupted atomic write
            tmp.unlink(missing_ok=True)


def _git_commit() -> dict[str, Any] | None:
    """The miakit source checkout's commit and dirty flag, when it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def _versions() -> dict[str, str]:
    out = {"miakit": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def manifest_head(kind: str) -> dict[str, Any]:
    """The opening of every run's manifest: miakit version, kind of run, creation time (UTC), command line."""
    return {
        "miakit_version": __version__,
        "kind": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }


def manifest_provenance() -> dict[str, Any]:
    """Package versions and the source checkout's commit, closing every run's manifest."""
    return {"versions": _versions(), "git": _git_commit()}


def data_manifest(dataset: MembershipDataset, labels: np.ndarray) -> dict[str, Any]:
    """What was evaluated: source, content hash and class counts of the scored samples."""
    return {
        "source": dataset.source,
        "hash": dataset.content_hash(),
        "n_samples": len(dataset),
        "n_members": int((labels == 1).sum()),
        "n_nonmembers": int((labels == 0).sum()),
    }


def metrics_frame(results: dict[str, Any]) -> pd.DataFrame:
    """One row per attack: each metric's value, ci_low and ci_high as columns."""
    rows = {}
    for name, metrics in results.get("attacks", {}).items():
        row = {}
        for metric, value in metrics.items():
            row[metric] = value.get("value")
            row[f"{metric}_ci_low"] = value.get("ci_low")
            row[f"{metric}_ci_high"] = value.get("ci_high")
        rows[name] = row
    frame = pd.DataFrame.from_dict(rows, orient="index", dtype=float)
    frame.index.name = "attack"
    return frame


def finish_run(
    results: dict[str, Any],
    scores: pd.DataFrame,
    manifest: dict[str, Any],
    *,
    out: str | None,
    suffix: str = "",
    write: bool = True,
    console: Any = None,
    tables: dict[str, pd.DataFrame] | None = None,
    store: Any = None,
) -> AuditResult:
    """Write the run directory (``out``, else runs/<time><suffix>), print the table, wrap it all up.

    ``tables``: further per-row results written as ``<name>.csv`` (e.g. ``documents``); ``store``: where the
    report's figures are kept, so a rerun on the same scores reads them instead of drawing them.
    """
    from miakit.report import print_results, render_run, write_run_files

    run_dir = None
    if write:
        run_dir = run_directory(out, suffix)
        clear_previous_run(run_dir)
        write_run_files(run_dir, results, scores, manifest)
        for name, table in (tables or {}).items():
            spreadsheet_safe(table).to_csv(run_dir / f"{name}.csv", index=False)
        render_run(run_dir, store=store)
    if console is not None:
        print_results(results, console)
    return AuditResult(
        metrics=metrics_frame(results),
        scores=scores,
        results=results,
        manifest=manifest,
        run_dir=run_dir,
        warnings=results["warnings"],
    )


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (document names are the user's groups)."""
    from miakit.data.spreadsheet import quote_cell

    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column].dtype):
            table[column] = table[column].map(lambda v: quote_cell(v) if isinstance(v, str) else v)
    return table


def scores_frame(ids: list[str], labels: list[int | None], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The scores table: id, label (nullable), one column per attack and baseline."""
    return pd.DataFrame({"id": ids, "label": pd.array(labels, dtype="Int64"), **columns})


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def scenario_summary(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """The scenario's record in the manifest: where it is and how its target was built."""
    if info is None:
        return None
    keys = (
        "name",
        "directory",
        "kind",
        "reference",
        "corpus",
        "seed",
        "n_members",
        "n_nonmembers",
        "canary_repeats",
        "n_calibration_members",
        "n_calibration_nonmembers",
    )
    summary = {k: info.get(k) for k in keys if k in info}
    training = info.get("training") or {}
    summary["training"] = {
        k: training.get(k) for k in ("trainer", "base", "method", "saved_as", "epochs", "lr", "size") if k in training
    }
    return summary


def audit_results(
    data: Any, plan: Any, scored: Any, evaluation: Any, blind: dict[str, np.ndarray]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """results.json's document and the scores table (attacks, then blind baselines) of an audit."""
    from miakit.report import build_results

    results = build_results(
        evaluation.evaluations, [*evaluation.warnings, *scored.warnings], plan.skipped, evaluation.kinds
    )
    results.update(evaluation.results_figures())
    if scored.canaries:
        results["canaries"] = scored.canaries
    if scored.calibration is not None:
        results["calibration"] = scored.calibration
    samples = data.evaluation.samples
    return results, scores_frame([s.id for s in samples], [s.label for s in samples], {**scored.columns, **blind})


def audit_manifest(
    spec: Any,
    data: Any,
    plan: Any,
    scored: Any,
    engine: Any,
    target: Any,
    references: dict[str, Any],
    scenario: dict[str, Any] | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    """manifest.json of an audit: configuration, models, attacks, data, store counts, timings, provenance."""
    store = engine.store
    return {
        **manifest_head("audit"),
        "config": spec.model_dump(),
        "model": target.describe(),
        "references": {name: t.describe() for name, t in references.items()},
        "attacks": {
            column: {
                "attack": a.name,
                "params": {k: _jsonable(v) for k, v in a.get_params().items()},
                "paper": a.paper,
            }
            for column, a in plan.attacks.items()
        },
        "skipped": plan.skipped,
        "scenario": scenario_summary(scenario),
        "calibration": scored.calibration,
        "engine_notes": {name: asdict(note) for name, note in engine.notes.items()},
        "evaluation": {
            "n_bootstrap": spec.bootstrap,
            "confidence": 0.95,
            "nan_policy": spec.nan_policy,
            "seed": spec.seed,
        },
        "data": data_manifest(data.evaluation, scored.labels),
        "store": str(store.path) if store is not None else None,
        "counts": engine.counts.as_dict(),
        "counts_by_kind": {kind: asdict(counts) for kind, counts in engine.kind_counts.items()},
        "timings_s": timings,
        **manifest_provenance(),
    }


def blind_results(dataset: MembershipDataset, spec: Any) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray]:
    """results.json's document and the scores table of a blind-baselines-only run (``miakit blind``)."""
    from miakit.errors import MiakitError
    from miakit.evaluate.evaluation import EvaluationSettings, evaluate_run
    from miakit.report import build_results
    from miakit.run.baselines import blind_scores

    samples = dataset.samples
    labels = np.array([s.label if s.label is not None else -1 for s in samples])
    if not dataset.is_labelled or min(int((labels == 1).sum()), int((labels == 0).sum())) < 2:
        raise MiakitError("Blind baselines need labelled data with at least 2 members and 2 non-members.")
    columns = blind_scores(dataset, spec.seed)
    evaluation = evaluate_run(
        labels,
        {},
        blind=columns,
        groups=[s.document for s in samples],
        shift=dataset.shift,
        settings=EvaluationSettings(n_bootstrap=spec.bootstrap, seed=spec.seed, nan_policy=spec.nan_policy),
    )
    results = build_results(evaluation.evaluations, [*evaluation.warnings, *dataset.warnings], {}, evaluation.kinds)
    return results, scores_frame([s.id for s in samples], [s.label for s in samples], columns), labels


def blind_manifest(spec: Any, dataset: MembershipDataset, labels: np.ndarray, seconds: float) -> dict[str, Any]:
    """manifest.json of a blind-baselines-only run."""
    return {
        **manifest_head("blind baselines only"),
        "config": spec.model_dump(),
        "model": None,
        "evaluation": {"n_bootstrap": spec.bootstrap, "confidence": 0.95, "seed": spec.seed},
        "data": data_manifest(dataset, labels),
        "timings_s": {"total": round(seconds, 3)},
        **manifest_provenance(),
    }
