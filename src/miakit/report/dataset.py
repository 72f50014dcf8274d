"""Run files of a dataset-inference run: results.json, manifest.json, pvalues.png and report.html."""

from __future__ import annotations

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


def write_dataset_inference(run_dir: Path, results: dict[str, Any], manifest: dict[str, Any]) -> None:
    """results.json, manifest.json, pvalues.png and report.html; the report opens with the suspect-vs-validation
    shift warning (``results["shift"]``, from ``suspect_shift``) when there is one."""
    import json

    from miakit.report.html import _environment, data_uri

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "results.json", json.dumps(to_jsonable(results), indent=2) + "\n")
    write_text(run_dir / "manifest.json", json.dumps(to_jsonable(manifest), indent=2) + "\n")
    png = pvalue_png(results)
    write_bytes(run_dir / "pvalues.png", png)
    html = (
        _environment()
        .get_template("dataset.html.j2")
        .render(r=to_jsonable(results), figure=data_uri(png), imputed=to_jsonable(imputed_rows(results)))
    )
    write_text(run_dir / "report.html", html)
