"""Orchestration: ``audit()`` loads data and models, gathers every attack's requests, runs the engine once,
scores, evaluates against a blind baseline, and writes the run directory."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miakit import __version__
from miakit.attacks import ATTACKS, Attack, build_attacks
from miakit.config import AuditConfig, apply_scenario, make_config
from miakit.data import MembershipDataset, Sample, load_dataset
from miakit.data.calibration import split_calibration
from miakit.errors import MiakitError

RENYI_DEFAULT_SWEEP = "max_renyi[alpha=0.5,1,2,inf]"
PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "pandas", "scikit-learn", "scipy", "pyarrow")


@dataclass
class AuditResult:
    """What ``audit`` returns: per-attack metrics and per-sample scores as DataFrames, plus the run files."""

    metrics: pd.DataFrame
    scores: pd.DataFrame
    results: dict[str, Any]
    manifest: dict[str, Any]
    run_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def report_path(self) -> Path | None:
        return self.run_dir / "report.html" if self.run_dir else None


def default_attack_specs() -> list[str]:
    """'all': every registered attack at its defaults, MaxRényi at every stored order."""
    specs = []
    for name in sorted((n for n in ATTACKS if ATTACKS[n].in_all), key=_registry_order):
        specs.append(RENYI_DEFAULT_SWEEP if name == "max_renyi" else name)
    return specs


def _registry_order(name: str) -> int:
    order = [
        "loss",
        "zlib",
        "lowercase",
        "min_k",
        "max_k",
        "min_k_pp",
        "surp",
        "max_renyi",
        "dc_pdd",
        "reference",
        "recall",
        "con_recall",
    ]
    return order.index(name) if name in order else len(order)


def plan_attacks(
    specs: Sequence[str], references: Sequence[str], capabilities: frozenset, *, calibration: bool = False
) -> tuple[dict[str, Attack], dict[str, str]]:
    """Column name -> attack instance for the requested specs, and name -> reason for skipped ones (missing
    capabilities, or no calibration set for attacks that fit on one)."""
    expanded: list[str] = []
    for spec in specs:
        expanded.extend(default_attack_specs() if spec.strip() == "all" else [spec])
    chosen: dict[str, Attack] = {}
    skipped: dict[str, str] = {}
    for spec in expanded:
        if spec.strip() == "reference":
            if not references:
                skipped["reference"] = "needs a reference model: pass --reference MODEL (e.g. the base model)"
                continue
            instances = [ATTACKS["reference"](model=r) for r in references]
        else:
            instances = build_attacks(spec)
        for attack in instances:
            column = attack.column_name()
            if attack.name == "reference" and len(references) == 1 and attack.model == references[0]:
                column = "reference"
            missing = attack.requires - capabilities
            if missing:
                skipped[column] = "target lacks " + ", ".join(sorted(c.value for c in missing))
                continue
            if attack.needs_calibration and not calibration:
                skipped[column] = "needs a calibration set: pass --calibration FILE or --calibration-fraction F"
                continue
            chosen.setdefault(column, attack)
    return chosen, skipped


def _load_data(config: AuditConfig, data: Any) -> MembershipDataset:
    if isinstance(data, MembershipDataset):
        dataset = data
    elif data is not None and not isinstance(data, (str, Path)):
        samples = list(data)
        if not all(isinstance(s, Sample) for s in samples):
            raise MiakitError("data must be a path, a MembershipDataset or a list of Sample.")
        dataset = MembershipDataset(samples, source="python")
    elif config.benchmark:
        from miakit.data.benchmarks import load_benchmark

        dataset = load_benchmark(
            config.benchmark, path=config.benchmark_path, max_samples=config.max_samples, seed=config.seed
        )
    else:
        dataset = load_dataset(
            config.data,
            members=config.members,
            nonmembers=config.nonmembers,
            max_samples=config.max_samples,
            seed=config.seed,
        )
    if not len(dataset):
        raise MiakitError(f"No samples to score in {dataset.source or 'the data'}.")
    return dataset


def _make_target(spec: Any, config: AuditConfig) -> Any:
    from miakit.targets.hf_causal import HFCausalLM

    if not isinstance(spec, str):
        return spec  # an already-built target (Python API)
    return HFCausalLM.from_pretrained(
        spec,
        revision=config.revision,
        dtype=config.dtype,
        device=config.device,
        trust_remote_code=config.trust_remote_code,
        max_length=config.max_length,
    )


def _git_commit() -> dict[str, Any] | None:
    """The miakit source checkout's commit and dirty flag, when it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
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


def _manifest_head() -> dict[str, Any]:
    """The opening of every run's manifest: miakit version, creation time (UTC) and command line."""
    return {
        "miakit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }


def _manifest_provenance() -> dict[str, Any]:
    """Package versions and the source checkout's commit, closing every run's manifest."""
    return {"versions": _versions(), "git": _git_commit()}


def _data_manifest(dataset: MembershipDataset, labels: np.ndarray) -> dict[str, Any]:
    """What was evaluated: source, content hash and class counts of the scored samples."""
    return {
        "source": dataset.source,
        "hash": dataset.content_hash(),
        "n_samples": len(dataset),
        "n_members": int((labels == 1).sum()),
        "n_nonmembers": int((labels == 0).sum()),
    }


def _bundled_corpus() -> Path | None:
    try:
        from miakit.scenarios.corpus import bundled_corpus_path

        return bundled_corpus_path()
    except (ImportError, FileNotFoundError):
        return None


def audit(
    model: Any = None,
    data: Any = None,
    *,
    config: AuditConfig | dict[str, Any] | None = None,
    progress: bool = True,
    console: Any = None,
    store: Any = "default",
    write: bool = True,
    **options: Any,
) -> AuditResult:
    """Run every requested attack on ``model`` over ``data`` and evaluate them.

    ``model`` is a local directory or hub id (or a built target such as ``HFCausalLM.from_model``); ``data``
    a file path, a ``MembershipDataset`` or a list of ``Sample``. Other options are those of
    ``AuditConfig`` (``reference``, ``attacks``, ``out``, ``batch_size``, ``dtype``, ...).
    """
    from miakit.evaluate import blind_baselines, evaluate_scores, strongest_blind_warning
    from miakit.report import build_results
    from miakit.signals.engine import Engine
    from miakit.signals.store import Store

    started = time.perf_counter()
    values = dict(config) if isinstance(config, dict) else (config.model_dump() if config else {})
    values.update({k: v for k, v in options.items() if v is not None})
    model_name = model if isinstance(model, str) else getattr(model, "name", None)
    values["model"] = model_name or values.get("model") or ""
    if data is not None and isinstance(data, (str, Path)):
        values["data"] = str(data)
    elif data is not None:
        values.setdefault("data", "python")
    scenario = apply_scenario(values)
    if not values["model"]:
        raise MiakitError("No target model given: pass --model (a local directory or a hub id) or --scenario.")
    cfg = make_config(values)

    split = split_calibration(
        _load_data(cfg, data),
        calibration=load_dataset(cfg.calibration) if cfg.calibration else None,
        fraction=cfg.calibration_fraction,
        seed=cfg.seed,
    )
    dataset = split.evaluation
    if cfg.chunk_words:  # after the split, so a document's chunks are all on one side
        dataset = chunk_dataset(dataset, cfg.chunk_words)
        if split.calibration is not None:
            split.calibration = chunk_dataset(split.calibration, cfg.chunk_words)
    timings: dict[str, float] = {"load_data": time.perf_counter() - started}

    t0 = time.perf_counter()
    target = _make_target(model if model is not None and not isinstance(model, str) else cfg.model, cfg)
    ref_targets: dict[str, Any] = {}
    for ref in cfg.reference:
        ref_targets[ref] = _make_target(ref, cfg)
    timings["load_models"] = time.perf_counter() - t0

    attacks, skipped = plan_attacks(
        cfg.attacks, cfg.reference, frozenset(target.capabilities), calibration=split.calibration is not None
    )
    for attack in attacks.values():
        if attack.name == "reference" and attack.model not in ref_targets:
            ref_targets[attack.model] = _make_target(attack.model, cfg)
    if not attacks:
        raise MiakitError("No attack can run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))

    if store == "default":
        store = Store()
    engine = Engine(
        {None: target, **ref_targets},
        store,
        batch_size=cfg.batch_size,
        prepend_bos=cfg.prepend_bos,
        stride=cfg.stride,
        default_corpus=cfg.reference_corpus or _bundled_corpus(),
        progress=progress,
    )
    samples = dataset.samples
    calibration_info = None
    if split.calibration is not None:
        t0 = time.perf_counter()
        known = split.calibration.samples
        signals = engine.run([r for attack in attacks.values() for r in attack.calibration_requests(known)])
        for attack in attacks.values():
            attack.fit(known, signals)
        fitted = {c: a.fitted_on() for c, a in attacks.items() if a.fitted_on()}
        details = {c: a.fitted_details() for c, a in attacks.items() if a.fitted_details()}
        calibration_info = {**split.info, "fitted": fitted, "details": details}
        timings["calibration"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    signals = collect_signals(engine, list(attacks.values()), samples)
    timings["signals"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    columns: dict[str, np.ndarray] = {}
    for column, attack in attacks.items():
        scores = np.asarray(attack.score(samples, signals), dtype=np.float64)
        if scores.shape != (len(samples),):
            raise RuntimeError(f"attack {column} returned shape {scores.shape} for {len(samples)} samples")
        columns[column] = scores
    timings["scoring"] = time.perf_counter() - t0

    canary_rows: list[dict[str, Any]] = []
    if cfg.canaries:
        t0 = time.perf_counter()
        from miakit.scenarios.canaries import read_canaries

        canary_rows = canary_exposures(engine, read_canaries(cfg.canaries))
        timings["canaries"] = time.perf_counter() - t0

    warnings = list(dataset.warnings) + length_warnings(target, samples, engine)
    labelled = dataset.is_labelled
    labels = np.array([s.label if s.label is not None else -1 for s in samples])
    evaluations: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    t0 = time.perf_counter()
    if labelled and _two_per_class(labels):
        columns.update(
            blind_baselines([s.text for s in samples], labels, seed=cfg.seed, groups=[s.document for s in samples])
        )
        for column, scores in columns.items():
            evaluations[column] = evaluate_scores(
                labels, scores, n_bootstrap=cfg.bootstrap, seed=cfg.seed, nan_policy=cfg.nan_policy
            )
            kinds[column] = "baseline" if column.startswith("blind_") else "attack"
        message = strongest_blind_warning(evaluations)
        if message:
            warnings.insert(0, message)
    elif labelled:
        warnings.append("Fewer than 2 members or non-members: scores only, no metrics.")
    else:
        warnings.append("The data has no labels: scores only, no metrics.")
    warnings.extend(score_warnings(columns, attacks, cfg.nan_policy))
    timings["evaluation"] = time.perf_counter() - t0

    scores_df = pd.DataFrame(
        {
            "id": [s.id for s in samples],
            "label": pd.array([s.label for s in samples], dtype="Int64"),
            **columns,
        }
    )
    results = build_results(evaluations, warnings, skipped, kinds)
    tables: dict[str, pd.DataFrame] = {}
    results.update(_audit_figures(labels, columns, kinds, evaluations, cfg))
    if labelled and any(s.group is not None for s in samples):
        t0 = time.perf_counter()
        from miakit.evaluate.documents import document_table

        known = known_nonmember_scores(engine, attacks, split.calibration)
        if known:
            warning = chunk_length_warning(samples, [s for s in split.calibration.samples if s.label == 0])
            if warning:
                results["warnings"].append(warning)
        results["documents"] = document_results(samples, labels, columns, cfg, known=known)
        tables["documents"] = document_table([s.document for s in samples], labels, columns, known.get("scores"))
        timings["documents"] = time.perf_counter() - t0
    if canary_rows:
        results["canaries"] = canary_rows
    if calibration_info is not None:
        results["calibration"] = calibration_info
    timings["total"] = time.perf_counter() - started
    manifest = {
        **_manifest_head(),
        "config": cfg.model_dump(),
        "model": target.describe(),
        "references": {name: t.describe() for name, t in ref_targets.items()},
        "attacks": {
            column: {
                "attack": a.name,
                "params": {k: _jsonable(v) for k, v in a.get_params().items()},
                "paper": a.paper,
            }
            for column, a in attacks.items()
        },
        "skipped": skipped,
        "scenario": _scenario_summary(scenario),
        "calibration": calibration_info,
        "engine_notes": {name: dataclasses.asdict(note) for name, note in engine.notes.items()},
        "evaluation": {
            "n_bootstrap": cfg.bootstrap,
            "confidence": 0.95,
            "nan_policy": cfg.nan_policy,
            "seed": cfg.seed,
        },
        "data": _data_manifest(dataset, labels),
        "store": str(store.path) if store is not None else None,
        "counts": engine.counts.as_dict(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        **_manifest_provenance(),
    }

    return _finish_run(
        results, scores_df, manifest, out=cfg.out, suffix="", write=write, console=console, tables=tables
    )


def _finish_run(
    results: dict[str, Any],
    scores_df: pd.DataFrame,
    manifest: dict[str, Any],
    *,
    out: str | None,
    suffix: str,
    write: bool,
    console: Any,
    tables: dict[str, pd.DataFrame] | None = None,
) -> AuditResult:
    """Write the run directory (``out``, else runs/<time><suffix>), print the table, wrap it all up.

    ``tables``: further per-row results written as ``<name>.csv`` (e.g. ``documents``).
    """
    from miakit.report import print_results, render_run, write_run_files

    run_dir = None
    if write:
        run_dir = Path(out) if out else Path("runs") / (_dt.datetime.now().strftime("%Y%m%d-%H%M%S") + suffix)
        write_run_files(run_dir, results, scores_df, manifest)
        for name, table in (tables or {}).items():
            table.to_csv(run_dir / f"{name}.csv", index=False)
        render_run(run_dir)
    if console is not None:
        print_results(results, console)
    return AuditResult(
        metrics=metrics_frame(results),
        scores=scores_df,
        results=results,
        manifest=manifest,
        run_dir=run_dir,
        warnings=results["warnings"],
    )


def chunk_length_warning(evaluated: Sequence[Sample], known: Sequence[Sample]) -> str | None:
    """A warning when the known non-member chunks are far longer or shorter than the evaluated ones: length
    moves loss-type scores, so document statistics against them would compare unlike texts."""
    mine = float(np.median([len(s.text.split()) for s in evaluated]))
    theirs = float(np.median([len(s.text.split()) for s in known]))
    if min(mine, theirs) > 0 and max(mine, theirs) / min(mine, theirs) <= 2:
        return None
    return (
        f"Documents: the known non-member chunks of the calibration set have a median of {theirs:g} words, the "
        f"evaluated chunks {mine:g}; the document statistics against them compare texts of different length. "
        "Cut both the same way (e.g. --chunk-words N)."
    )


def chunk_dataset(dataset: MembershipDataset, words: int) -> MembershipDataset:
    """Every sample cut into chunks of ``words`` words: ids ``ID#k``, group = the sample's group or its id."""
    from miakit.evaluate.documents import chunk_text

    chunks = [
        Sample(f"{s.id}#{k}", text, s.label, s.document, dict(s.meta))
        for s in dataset.samples
        for k, text in enumerate(chunk_text(s.text, words))
    ]
    return MembershipDataset(chunks, dataset.source, list(dataset.warnings))


def known_nonmember_scores(
    engine: Any, attacks: dict[str, Attack], calibration: MembershipDataset | None
) -> dict[str, Any]:
    """Scores of the calibration non-members (known non-member documents) by every attack not fitted on them.

    The reference of the document statistics (Puerto et al.). Attacks fitted on the calibration set would
    score their own training samples, so they keep the other documents as reference. Returns
    ``{"scores": {column: array}, "n_chunks": int, "n_documents": int}``, empty without non-members.
    """
    if calibration is None:
        return {}
    known = [s for s in calibration.samples if s.label == 0]
    usable = {c: a for c, a in attacks.items() if not a.needs_calibration}
    if not known or not usable:
        return {}
    signals = collect_signals(engine, list(usable.values()), known)
    scores = {c: np.asarray(a.score(known, signals), dtype=np.float64) for c, a in usable.items()}
    documents = {s.document for s in known}
    return {"scores": scores, "n_chunks": len(known), "n_documents": len(documents)}


def document_results(
    samples: Sequence[Sample],
    labels: np.ndarray,
    columns: dict[str, np.ndarray],
    cfg: Any,
    known: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Document-level metrics: chunk scores aggregated per group by each statistic, then evaluated.

    ``known``: from ``known_nonmember_scores``; the ``above`` and ``mwu`` statistics of the attacks it scored
    compare each document with those known non-member chunks, the others with the other documents.
    """
    from miakit.evaluate import evaluate_scores
    from miakit.evaluate.documents import METHODS, document_scores

    known = known or {}
    reference_scores = known.get("scores", {})
    groups = [s.document for s in samples]
    out: dict[str, Any] = {"methods": {}, "reference": {}}
    for column in columns:
        out["reference"][column] = (
            f"known non-members: {known['n_chunks']} chunks of {known['n_documents']} calibration documents"
            if column in reference_scores
            else "the other evaluated documents"
        )
    for method in METHODS:
        per_attack = {}
        for column, scores in columns.items():
            ids, doc_labels, doc_scores = document_scores(
                groups, labels, scores, method, reference=reference_scores.get(column)
            )
            if not _two_per_class(doc_labels):
                return {"note": "fewer than 2 member or non-member documents: no document-level metrics"}
            evaluation = evaluate_scores(doc_labels, doc_scores, n_bootstrap=cfg.bootstrap, seed=cfg.seed)
            per_attack[column] = evaluation.to_json()
        out["methods"][method] = per_attack
    out["n_documents"] = len(ids)
    out["n_member_documents"] = int((doc_labels == 1).sum())
    out["chunks_per_document"] = round(len(samples) / max(1, len(ids)), 2)
    return out


def _audit_figures(
    labels: np.ndarray, columns: dict[str, np.ndarray], kinds: dict[str, str], evaluations: dict[str, Any], cfg: Any
) -> dict[str, Any]:
    """Paired bootstrap comparison against the best attack and the best attack's epsilon lower bound."""
    from miakit.evaluate.compare import paired_auroc_comparison
    from miakit.evaluate.epsilon import epsilon_lower_bound

    attacks = [c for c in columns if kinds.get(c) == "attack"]
    if not attacks:
        return {}
    aurocs = {c: evaluations[c].metrics["auroc"].value for c in attacks}
    best = max(attacks, key=lambda c: -1.0 if aurocs[c] is None else aurocs[c])
    # under nan_policy "omit" the figures leave out the samples the metrics leave out (else NaN ranks lowest);
    # the comparison keeps the samples every compared attack scored, so all attacks share the same samples
    omit = cfg.nan_policy == "omit"
    keep = ~np.isnan(columns[best]) if omit else np.ones(len(labels), dtype=bool)
    out: dict[str, Any] = {}
    if _two_per_class(labels[keep]):
        out["epsilon"] = {"attack": best, **epsilon_lower_bound(labels[keep], columns[best][keep])}
        if omit:
            out["epsilon"]["n_omitted"] = int((~keep).sum())
    rows = ~np.any([np.isnan(columns[c]) for c in attacks], axis=0) if omit else np.ones(len(labels), dtype=bool)
    if len(attacks) >= 2 and cfg.bootstrap > 0 and _two_per_class(labels[rows]):
        out["comparison"] = paired_auroc_comparison(
            labels[rows], {c: columns[c][rows] for c in attacks}, best=best, n_bootstrap=cfg.bootstrap, seed=cfg.seed
        )
        if omit:
            out["comparison"]["n_omitted"] = int((~rows).sum())
    return out


def _two_per_class(labels: np.ndarray) -> bool:
    return min(int((labels == 1).sum()), int((labels == 0).sum())) >= 2


def collect_signals(engine: Any, attacks: Sequence[Attack], samples: Sequence[Sample]) -> Any:
    """Every signal the attacks need for ``samples``: their requests, then rounds of follow-up requests that
    depend on earlier signals (neighbours' token statistics) until none is new."""
    from miakit.signals.engine import Signals

    signals = engine.run([r for attack in attacks for r in attack.requests(samples)])
    for _ in range(10):
        more = [r for attack in attacks for r in attack.more_requests(samples, signals) if r not in signals.values]
        if not more:
            break
        signals = Signals({**signals.values, **engine.run(more).values})
    return signals


def canary_exposures(engine: Any, canaries: Sequence[Any]) -> list[dict[str, Any]]:
    """Exposure of each canary under the engine's target: the secret's log-likelihood given the prefix,
    ranked among the candidates' (one batched, cached engine pass over all of them)."""
    from miakit.scenarios.canaries import exposure
    from miakit.signals.requests import TokenStatsRequest

    requests = {
        (c.id, s): TokenStatsRequest(text=s, context=c.prefix) for c in canaries for s in (c.secret, *c.candidates)
    }
    signals = engine.run(list(requests.values()))
    rows = []
    for c in canaries:

        def ll(secret: str, c: Any = c) -> float:
            return float(np.sum(signals[requests[(c.id, secret)]].logprob, dtype=np.float64))

        secret = ll(c.secret)
        row = {"id": c.id, "repeats": c.repeats, "prefix": c.prefix, "secret": c.secret}
        row.update(exposure(secret, [ll(s) for s in c.candidates]))
        row["secret_logprob"] = secret
        rows.append(row)
    return rows


def _scenario_summary(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    keys = ("directory", "kind", "reference", "corpus", "seed", "n_members", "n_nonmembers", "canary_repeats")
    summary = {k: info.get(k) for k in keys if k in info}
    training = info.get("training") or {}
    summary["training"] = {
        k: training.get(k) for k in ("trainer", "base", "method", "saved_as", "epochs", "lr", "size") if k in training
    }
    return summary


def score_warnings(columns: dict[str, np.ndarray], attacks: dict[str, Attack], nan_policy: str) -> list[str]:
    """NaN and infinite scores per attack, counted (never dropped), with what they mean."""
    out = []
    for column, attack in attacks.items():
        values = columns[column]
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        if n_nan:
            out.append(f"{column}: {n_nan} of {len(values)} scores are NaN (policy '{nan_policy}').")
        if n_inf:
            hint = ""
            if attack.name == "surp":
                hint = (
                    f" SURP found no token with entropy < tau = {attack.tau} among the lowest "
                    f"{attack.k:.0%} log-probs; small models rarely go below 2 nats, try surp[tau=4]."
                )
            out.append(f"{column}: {n_inf} of {len(values)} scores are infinite (ranked as extremes).{hint}")
    return out


def length_warnings(target: Any, samples: Sequence[Sample], engine: Any) -> list[str]:
    """Texts longer than the target's context (scored with rolling windows) or with no scored token."""
    lengths = [len(target.encode(s.text)) + (1 if engine.prepend_bos else 0) for s in samples]
    n_long = sum(n > target.max_length for n in lengths)
    n_short = sum(n < 2 for n in lengths)
    out = []
    if n_long:
        out.append(
            f"{n_long} of {len(samples)} texts are longer than the target's context ({target.max_length} "
            f"tokens): scored with rolling windows (stride {engine.stride_for(target)}), every token once, "
            "never truncated."
        )
    if n_short:
        out.append(f"{n_short} text(s) have a single token, unscored without --prepend-bos: their scores are NaN.")
    return out


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def blind(
    data: Any = None,
    *,
    members: str | None = None,
    nonmembers: str | None = None,
    out: str | None = None,
    max_samples: int | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    benchmark: str | None = None,
    benchmark_path: str | None = None,
    write: bool = True,
    console: Any = None,
) -> AuditResult:
    """Only the model-free blind baselines on labelled data (``miakit blind``): does the split itself leak?

    ``data`` (or ``members``/``nonmembers``, or a ``benchmark`` spec with its local ``benchmark_path``) gives the
    samples. Writes the same run files as an audit (results.json, scores, manifest, roc.png, report.html) with
    the columns ``blind_bow``, ``blind_date`` and ``blind_ngram``.
    """
    from miakit.evaluate import blind_baselines, evaluate_scores, strongest_blind_warning
    from miakit.report import build_results

    started = time.perf_counter()
    if benchmark and data is not None:
        raise MiakitError("Give either a benchmark or data, not both.")
    if isinstance(data, MembershipDataset):
        dataset = data
    elif benchmark:
        from miakit.data.benchmarks import load_benchmark

        if members or nonmembers:
            raise MiakitError("Give either a benchmark or data files, not both.")
        dataset = load_benchmark(benchmark, path=benchmark_path, max_samples=max_samples, seed=seed)
    else:
        dataset = load_dataset(
            str(data) if data is not None else None,
            members=members,
            nonmembers=nonmembers,
            max_samples=max_samples,
            seed=seed,
        )
    samples = dataset.samples
    labels = np.array([s.label if s.label is not None else -1 for s in samples])
    if not dataset.is_labelled or not _two_per_class(labels):
        raise MiakitError("Blind baselines need labelled data with at least 2 members and 2 non-members.")
    columns = blind_baselines([s.text for s in samples], labels, seed=seed, groups=[s.document for s in samples])
    evaluations = {
        name: evaluate_scores(labels, scores, n_bootstrap=bootstrap, seed=seed) for name, scores in columns.items()
    }
    warnings = list(dataset.warnings)
    message = strongest_blind_warning(evaluations)
    if message:
        warnings.insert(0, message)
    results = build_results(evaluations, warnings, {}, {name: "baseline" for name in columns})
    scores_df = pd.DataFrame(
        {"id": [s.id for s in samples], "label": pd.array([s.label for s in samples], dtype="Int64"), **columns}
    )
    manifest = {
        **_manifest_head(),
        "model": None,
        "kind": "blind baselines only",
        "evaluation": {"n_bootstrap": bootstrap, "confidence": 0.95, "seed": seed},
        "data": _data_manifest(dataset, labels),
        "timings_s": {"total": round(time.perf_counter() - started, 3)},
        **_manifest_provenance(),
    }
    return _finish_run(results, scores_df, manifest, out=out, suffix="-blind", write=write, console=console)


DATASET_FEATURES = (
    "loss",
    "zlib",
    "min_k[k=0.05,0.1,0.2,0.3,0.4,0.5,0.6]",
    "max_k[k=0.05,0.1,0.2]",
    "min_k_pp[k=0.05,0.1,0.2,0.3,0.4,0.5,0.6]",
    RENYI_DEFAULT_SWEEP,
)


def infer_dataset(
    model: Any,
    suspect: str | Path,
    validation: str | Path,
    *,
    attacks: Sequence[str] = DATASET_FEATURES,
    reference: Sequence[str] = (),
    out: str | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    batch_size: int = 8,
    dtype: str = "auto",
    device: str = "auto",
    store: Any = "default",
    progress: bool = True,
    console: Any = None,
    write: bool = True,
) -> dict[str, Any]:
    """Dataset inference (Maini et al. 2024): is the suspect set, as a whole, in the training data?

    ``suspect`` and ``validation`` are text files (.txt, .jsonl, .csv, .parquet); the validation texts must be
    of the same distribution and known not to be trained on. Every attack in ``attacks`` (one pass per text,
    through the engine and store) gives a feature; see ``miakit.evaluate.dataset_inference``. A false-positive
    run splits the validation set against itself. Returns the results dict (also ``results.json`` in ``out``).
    """
    from miakit.data.corpus import read_corpus_texts
    from miakit.evaluate.dataset_inference import infer, validation_vs_itself
    from miakit.signals.engine import Engine
    from miakit.signals.store import Store

    started = time.perf_counter()
    cfg = make_config({"model": str(model), "data": str(suspect), "batch_size": batch_size, "dtype": dtype,
                       "device": device, "seed": seed})  # fmt: skip
    suspect_texts = list(dict.fromkeys(read_corpus_texts(suspect)))
    seen = set(suspect_texts)
    validation_texts = [t for t in dict.fromkeys(read_corpus_texts(validation)) if t not in seen]
    if len(suspect_texts) < 8 or len(validation_texts) < 16:
        raise MiakitError(
            f"Dataset inference needs at least 8 suspect texts and 16 validation texts (half of them for the "
            f"false-positive run), all distinct and none in both; got {len(suspect_texts)} suspect and "
            f"{len(validation_texts)} validation texts."
        )
    samples = [Sample(f"s{i}", t, 1) for i, t in enumerate(suspect_texts)]
    samples += [Sample(f"v{i}", t, 0) for i, t in enumerate(validation_texts)]
    target = _make_target(model if not isinstance(model, (str, Path)) else str(model), cfg)
    refs = {r: _make_target(r, cfg) for r in reference}
    chosen, skipped = plan_attacks(list(attacks), list(reference), frozenset(target.capabilities))
    engine = Engine(
        {None: target, **refs},
        Store() if store == "default" else store,
        batch_size=batch_size,
        default_corpus=_bundled_corpus(),
        progress=progress,
    )
    signals = collect_signals(engine, list(chosen.values()), samples)
    names = list(chosen)
    features = np.column_stack([np.asarray(a.score(samples, signals), dtype=np.float64) for a in chosen.values()])
    n_s = len(suspect_texts)
    result = infer(features[:n_s], features[n_s:], seed=seed)
    false_positive = validation_vs_itself(features[n_s:], seed=seed + 1)
    results: dict[str, Any] = {
        "p_value": result["p_value"],
        "false_positive_p_value": false_positive["p_value"],
        "alpha": alpha,
        "significant": result["p_value"] < alpha,
        "false_positive_significant": false_positive["p_value"] < alpha,
        "curve": result["curve"],
        "false_positive_curve": false_positive["curve"],
        "n_suspect": n_s,
        "n_validation": len(validation_texts),
        "features": names,
        "skipped": skipped,
        "details": {"suspect_vs_validation": result, "validation_vs_itself": false_positive},
    }
    manifest = {
        **_manifest_head(),
        "kind": "dataset inference",
        "model": target.describe(),
        "suspect": str(suspect),
        "validation": str(validation),
        "counts": engine.counts.as_dict(),
        "timings_s": {"total": round(time.perf_counter() - started, 3)},
        **_manifest_provenance(),
    }
    if write:
        from miakit.report.dataset import write_dataset_inference

        run_dir = Path(out) if out else Path("runs") / (_dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-dataset")
        results["run_dir"] = str(run_dir)
        write_dataset_inference(run_dir, results, manifest)
    if console is not None:
        verdict = "trained on" if results["significant"] else "no evidence it was trained on"
        console.print(
            f"Dataset inference: p = {results['p_value']:.3g} ({verdict} at alpha {alpha}); false-positive run "
            f"(validation against itself): p = {results['false_positive_p_value']:.3g}. "
            f"{n_s} suspect and {len(validation_texts)} validation texts, {len(names)} features."
        )
    return results
