"""Run files, console table, plots and the self-contained HTML report. Never imports torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from miakit.report.console import print_results
from miakit.report.files import (
    MANIFEST,
    REPORT_HTML,
    RESULTS,
    ROC_PNG,
    SCORES_CSV,
    SCORES_PARQUET,
    build_results,
    read_run,
    read_scores_csv,
    write_bytes,
    write_run_files,
)
from miakit.report.html import render_html
from miakit.report.plots import histograms_figure, histograms_png, plot_roc, roc_png, stored_png


def render_run(run_dir: str | os.PathLike, *, store: Any = None) -> Path:
    """Write roc.png and report.html from a run directory's files; returns the report's path. With a ``store``,
    figures drawn before for the same scores are read back instead of drawn."""
    run_dir = Path(run_dir)
    _, scores, _ = read_run(run_dir)
    roc = stored_png(store, "roc", scores, lambda: roc_png(scores))
    write_bytes(run_dir / ROC_PNG, roc)
    return render_html(run_dir, roc=roc, store=store)


__all__ = [
    "MANIFEST",
    "REPORT_HTML",
    "RESULTS",
    "ROC_PNG",
    "SCORES_CSV",
    "SCORES_PARQUET",
    "build_results",
    "histograms_figure",
    "histograms_png",
    "plot_roc",
    "print_results",
    "read_run",
    "read_scores_csv",
    "render_html",
    "render_run",
    "roc_png",
    "write_run_files",
]
