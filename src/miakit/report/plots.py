"""ROC and score-histogram figures, drawn with matplotlib's Agg canvas only (no pyplot, no display).

A drawn figure is a function of the scores table, the NaN policy, this module and matplotlib's version; with a
store, ``stored_png`` keys the PNG by all of them, so a rerun on stored signals neither draws nor imports
matplotlib (drawing the figures was half of such a rerun).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from miakit.errors import MiakitError
from miakit.evaluate import auroc, roc_points
from miakit.report.files import attack_columns, write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(**kwargs: Any) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_label(text: str) -> str:
    """Text safe for matplotlib: no mathtext from '$', and a leading '_' would hide a legend entry."""
    text = str(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def _png(fig: Figure, *, tight: bool = True) -> bytes:
    """PNG bytes of ``fig``; ``tight`` crops to the drawn extent, which costs a second drawing pass (figures
    with fixed margins pass False)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, **({"bbox_inches": "tight"} if tight else {}))
    return buf.getvalue()


def _labelled(scores: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose label is 0 or 1, and those labels as ints."""
    labels = pd.to_numeric(scores["label"], errors="coerce")
    keep = labels.isin([0, 1]).to_numpy()
    return scores.loc[keep], labels[keep].to_numpy(dtype=int)


def _policy(scores: pd.DataFrame, nan_policy: str | None) -> str:
    """The run's NaN policy: given, else recorded on the table by `read_run` (from the manifest), else "lowest".

    "raise" draws as "lowest": a run under "raise" has no NaN in any evaluated column, so the two agree.
    """
    policy = nan_policy or scores.attrs.get("nan_policy") or "lowest"
    return "lowest" if policy == "raise" else policy


def _curve(labels: np.ndarray, values: np.ndarray, policy: str) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(AUROC, fpr, tpr) as the metrics table computes them under ``policy``; None when omitting NaN scores
    leaves a class empty (the table says not estimable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "omit" warns about the NaNs it leaves out
        try:
            fpr, tpr, _ = roc_points(labels, values, nan_policy=policy)
            return auroc(labels, values, nan_policy=policy), fpr, tpr
        except MiakitError:
            return None


def roc_figure(scores: pd.DataFrame, nan_policy: str | None = None) -> Figure:
    """Log-log ROC of every attack column, AUROC in the legend, chance diagonal; NaN scores treated by the
    run's ``nan_policy`` so the legend matches the metrics table."""
    policy = _policy(scores, nan_policy)
    table, labels = _labelled(scores)
    n1, n0 = int((labels == 1).sum()), int((labels == 0).sum())
    fig = _figure(figsize=(6.4, 5.2), dpi=100)
    ax = fig.add_subplot()
    if n1 == 0 or n0 == 0:
        ax.text(0.5, 0.5, "no labelled members and non-members to plot", ha="center", va="center")
        ax.set_axis_off()
        return fig
    lo = 1.0 / max(n0, n1)
    curves = []
    for name in attack_columns(table):
        curve = _curve(labels, table[name].to_numpy(dtype=float), policy)
        if curve is not None:
            curves.append((curve[0], name, curve[1], curve[2]))
    styles = ("-", "--", ":", "-.")  # the colour cycle repeats after 10 curves; the line style then changes
    for i, (auc, name, fpr, tpr) in enumerate(sorted(curves, key=lambda c: -c[0])):
        ls = styles[(i // 10) % len(styles)]
        ax.plot(fpr, tpr, lw=1.4, ls=ls, color=f"C{i % 10}", label=f"{plot_label(name)} (AUROC {auc:.3f})")
    ax.plot([lo, 1.0], [lo, 1.0], ls="--", color="grey", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1.0 / n0, 1.0)
    ax.set_ylim(lo, 1.02)
    ax.set_xlabel(f"false positive rate (log; {n0} non-members)")
    ax.set_ylabel(f"true positive rate (log; {n1} members)")
    title = "ROC, member iff score >= threshold"
    ax.set_title(title + (f" (NaN scores: {policy})" if policy != "lowest" else ""))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return fig


def roc_png(scores: pd.DataFrame, nan_policy: str | None = None) -> bytes:
    """`roc_figure` as PNG bytes."""
    fig = roc_figure(scores, nan_policy)
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.1, top=0.93)  # fixed margins: drawn once
    return _png(fig, tight=False)


def plot_roc(scores: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the log-log ROC of every attack column to path (PNG, atomically)."""
    path = Path(path)
    write_bytes(path, roc_png(scores))
    return path


def _draw_histogram(ax: Any, name: str, values: np.ndarray, labels: np.ndarray) -> None:
    """One attack's score histogram on ``ax``, members against non-members; NaN/inf counts in the title."""
    finite = np.isfinite(values)
    n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    if finite.any():
        bins = np.histogram_bin_edges(values[finite], bins=40)
        for lab, colour, who in ((0, "tab:blue", "non-members"), (1, "tab:red", "members")):
            sel = values[finite & (labels == lab)]
            if sel.size:  # one filled step artist per class (80 bar patches per panel drew ~5x slower)
                density, _ = np.histogram(sel, bins=bins, density=True)
                ax.stairs(density, bins, fill=True, alpha=0.5, color=colour, label=f"{who} (n={sel.size})")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no finite scores", ha="center", va="center", transform=ax.transAxes)
    extra = f" ({n_nan} NaN, {n_inf} inf not shown)" if n_nan or n_inf else ""
    ax.set_title(plot_label(name) + extra, fontsize=9)
    ax.set_xlabel("score (higher = member)", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.tick_params(labelsize=7)


HISTOGRAM_COLUMNS = 3


def histograms_figure(scores: pd.DataFrame) -> Figure | None:
    """Every attack's score histogram split by label, one panel per column of the scores table, in one figure
    (drawn and encoded once: a figure per attack cost ~0.4 s each). None when there is no attack column."""
    table, labels = _labelled(scores)
    names = attack_columns(table)
    if not names:
        return None
    rows = -(-len(names) // HISTOGRAM_COLUMNS)
    fig = _figure(figsize=(4.2 * HISTOGRAM_COLUMNS, 2.9 * rows), dpi=100)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.5 / rows / 2.9 + 0.02, top=1 - 0.35 / rows / 2.9 * 2,
                        wspace=0.28, hspace=0.75)  # fmt: skip
    for i, name in enumerate(names):
        _draw_histogram(
            fig.add_subplot(rows, HISTOGRAM_COLUMNS, i + 1), name, table[name].to_numpy(dtype=float), labels
        )
    return fig


def histograms_png(scores: pd.DataFrame) -> bytes | None:
    """``histograms_figure`` as PNG bytes (None without attack columns)."""
    fig = histograms_figure(scores)
    return None if fig is None else _png(fig, tight=False)


def layer_auroc_png(name: str, layer_auroc: list[float], best_layer: int) -> bytes:
    """A probe's out-of-fold AUROC per layer on the calibration set, the chosen layer marked."""
    fig = _figure(figsize=(5.5, 2.8), dpi=100)
    ax = fig.add_subplot()
    layers = np.arange(len(layer_auroc))
    ax.plot(layers, layer_auroc, marker="o", markersize=3)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.axvline(best_layer, color="tab:red", linewidth=0.8, linestyle="--", label=f"chosen: layer {best_layer}")
    ax.set_xlabel("layer (0 = embeddings)", fontsize=8)
    ax.set_ylabel("out-of-fold AUROC", fontsize=8)
    ax.set_title(plot_label(name) + ": per-layer probe AUROC on calibration data", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)
    return _png(fig)


_CODE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def figure_key(kind: str, scores: pd.DataFrame, nan_policy: str | None = None) -> str:
    """Store key of a figure of ``scores``: its kind, the labelled rows' labels and attack columns (names and
    float64 values), the NaN policy, the drawing code (this file's hash) and matplotlib's version."""
    table, labels = _labelled(scores)
    names = attack_columns(table)
    try:
        version = importlib.metadata.version("matplotlib")
    except importlib.metadata.PackageNotFoundError:
        version = None
    h = hashlib.sha256(json.dumps(["figure", kind, _CODE, version, _policy(scores, nan_policy), names]).encode())
    h.update(labels.astype(np.int64).tobytes())
    for name in names:
        h.update(np.ascontiguousarray(table[name].to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()


def stored_png(
    store: Any, kind: str, scores: pd.DataFrame, draw: Callable[[], bytes | None], nan_policy: str | None = None
) -> bytes | None:
    """``draw()``, read from ``store`` when this figure of these scores was drawn before (then written there)."""
    if store is None:
        return draw()
    key = figure_key(kind, scores, nan_policy)
    png = store.get_many([key]).get(key)
    if png is None:
        png = draw()
        if png is not None:
            store.put_many({key: png})
    return png
