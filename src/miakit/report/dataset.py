"""Run files of a dataset-inference run: results.json, manifest.json, pvalues.png and report.html."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from miakit.report.files import to_jsonable, write_bytes, write_text


def pvalue_png(results: dict[str, Any]) -> bytes:
    """The p-value against the number of texts used, for the suspect set and the false-positive run."""
    from matplotlib.figure import Figure

    from miakit.report.plots import _png

    fig = Figure(figsize=(5.5, 3.2), dpi=100)
    ax = fig.add_subplot()
    for key, label in (("curve", "suspect vs validation"), ("false_positive_curve", "validation vs itself")):
        points = results.get(key) or []
        if points:
            ax.plot([p["n"] for p in points], [max(p["p_value"], 1e-300) for p in points], marker="o", label=label)
    ax.axhline(results.get("alpha", 0.05), color="grey", linestyle=":", linewidth=0.8, label="alpha")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("texts per side in the test half", fontsize=8)
    ax.set_ylabel("one-sided Welch p-value", fontsize=8)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    return _png(fig)


def imputed_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The features with at least one imputed (missing) value, from ``results["imputed"]`` (rows of
    ``miakit.evaluate.dataset_inference.imputed_table``)."""
    return [row for row in results.get("imputed") or [] if row["suspect"] or row["validation"]]


DATASET_INFERENCE_KIND = "dataset inference"


def write_dataset_inference(run_dir: Path, results: dict[str, Any], manifest: dict[str, Any]) -> None:
    """results.json, manifest.json, pvalues.png and report.html; the report opens with the suspect-vs-validation
    shift warning (``results["shift"]``, from ``suspect_shift``) when there is one."""
    import json

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "results.json", json.dumps(to_jsonable(results), indent=2) + "\n")
    write_text(run_dir / "manifest.json", json.dumps(to_jsonable(manifest), indent=2) + "\n")
    render_dataset_report(run_dir, results)


def render_dataset_report(run_dir: Path, results: dict[str, Any]) -> Path:
    """pvalues.png and report.html of a dataset-inference run from its results; returns the report's path."""
    from miakit.report.html import _environment, data_uri

    png = pvalue_png(results)
    write_bytes(run_dir / "pvalues.png", png)
    html = (
        _environment()
        .get_template("dataset.html.j2")
        .render(r=to_jsonable(results), figure=data_uri(png), imputed=to_jsonable(imputed_rows(results)))
    )
    path = run_dir / "report.html"
    write_text(path, html)
    return path


def is_dataset_inference_run(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` was written by ``miakit infer-dataset`` (its manifest's kind, or a results.json with a
    p-value and no attack table)."""
    import json

    run_dir = Path(run_dir)
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and manifest.get("kind") == DATASET_INFERENCE_KIND:
            return True
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and "p_value" in results and "attacks" not in results


def rerender_dataset_inference(run_dir: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """Read a dataset-inference run's results.json and redraw its pvalues.png and report.html."""
    import json

    from miakit.errors import MiakitError

    run_dir = Path(run_dir)
    try:
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MiakitError(f"{run_dir / 'results.json'} is not readable JSON ({e}); the run may be damaged") from e
    needed = {"p_value", "false_positive_p_value", "alpha", "significant", "curve", "n_suspect", "n_validation"}
    if not isinstance(results, dict) or not needed <= results.keys():
        raise MiakitError(
            f"{run_dir / 'results.json'} lacks the keys of a dataset-inference run "
            f"({', '.join(sorted(needed))}); rerun 'miakit infer-dataset' to write it again."
        )
    results.setdefault("features", [])
    return results, render_dataset_report(run_dir, results)


def dataset_inference_lines(results: dict[str, Any]) -> list[str]:
    """What the console says of a dataset-inference run: the shift warning, the test and the false-positive run."""
    shift = results.get("shift") or {}
    lines = [f"warning: {line}" for line in (shift.get("warning"), shift.get("note")) if line]
    verdict = "trained on" if results.get("significant") else "no evidence it was trained on"
    lines.append(
        f"Dataset inference: p = {results['p_value']:.3g} ({verdict} at alpha {results['alpha']}); false-positive "
        f"run (validation against itself): p = {results['false_positive_p_value']:.3g}. {results['n_suspect']} "
        f"suspect and {results['n_validation']} validation texts, {len(results.get('features') or [])} features."
    )
    return lines
