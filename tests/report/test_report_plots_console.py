"""Figures (PNG, Agg only, odd names survive) and the rich console table."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
from report_helpers import HOSTILE
from rich.console import Console

from miakit.report import histograms_figure, histograms_png, plot_roc, print_results
from miakit.report.plots import plot_label, roc_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_roc_writes_png(tmp_path, run_parts):
    _, scores, _ = run_parts
    path = plot_roc(scores, tmp_path / "roc.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_roc_survives_awkward_names_and_unlabelled_rows():
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {
            "id": [str(i) for i in range(60)],
            "label": [1] * 25 + [0] * 25 + [None] * 10,
            "$\\frac{": rng.normal(size=60),  # broken mathtext
            "_hidden": rng.normal(size=60),
            "all_nan": np.full(60, np.nan),
        }
    )
    assert roc_png(scores).startswith(PNG_MAGIC)
    assert plot_label("_x") == " _x" and plot_label("a$b$") == r"a\$b\$"


def test_roc_without_both_classes_still_draws():
    scores = pd.DataFrame({"id": ["a", "b"], "label": [1, 1], "loss": [0.1, 0.2]})
    assert roc_png(scores).startswith(PNG_MAGIC)


def test_histograms_one_panel_per_attack_in_one_figure(run_parts):
    _, scores, _ = run_parts
    fig = histograms_figure(scores)
    assert [ax.get_title().split(" (")[0] for ax in fig.axes] == list(scores.columns[2:])
    labels = scores["label"].to_numpy()
    for ax, column in zip(fig.axes, scores.columns[2:], strict=True):  # each panel draws its own column's classes
        values = scores[column].to_numpy(dtype=float)
        finite = np.isfinite(values)
        drawn = [patch.get_data() for patch in ax.patches]
        if not finite.any():
            assert drawn == []
            continue
        edges = np.histogram_bin_edges(values[finite], bins=40)
        for (density, bins, _), label in zip(drawn, (0, 1), strict=True):
            expected, _ = np.histogram(values[finite & (labels == label)], bins=edges, density=True)
            np.testing.assert_allclose(density, expected)
            np.testing.assert_allclose(bins, edges)
    assert histograms_png(scores).startswith(PNG_MAGIC)
    assert histograms_png(scores[["id", "label"]]) is None


def test_plots_use_agg_without_pyplot():
    code = (
        "import sys, pandas as pd; from miakit.report import roc_png;"
        "roc_png(pd.DataFrame({'id': ['a', 'b'], 'label': [1, 0], 's': [1.0, 0.0]}));"
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def render(results) -> str:
    buf = io.StringIO()
    print_results(results, Console(file=buf, width=250, color_system=None))
    return buf.getvalue()


def test_console_table_sorted_with_literal_names(run_parts):
    results, _, _ = run_parts
    out = render(results)
    for name in ("min_k[k=0.1]", "reference[model=gpt2]", HOSTILE):  # brackets are not rich markup
        assert name in out
    aurocs = {name: m["auroc"]["value"] for name, m in results["attacks"].items()}
    expected = sorted(aurocs, key=lambda n: -aurocs[n])
    assert expected[-1] == HOSTILE  # the pure-noise column has the lowest AUROC
    positions = [out.index(f"│ {name} ") for name in expected]  # row starts
    assert positions == sorted(positions)
    loss = results["attacks"]["loss"]["auroc"]
    assert f"{loss['value']:.3f} [{loss['ci_low']:.3f}, {loss['ci_high']:.3f}]" in out
    assert "n/e" in out
    for header in ("AUROC [CI]", "TPR@0.1%FPR", "TPR@1%FPR", "TPR@5%FPR", "FPR@95%TPR", "bal. acc."):
        assert header in out


def test_console_warnings_blind_first_then_skipped(run_parts):
    results, _, _ = run_parts
    out = render(results)
    assert out.index("warning: Blind baseline:") < out.index("warning: dataset warning")
    assert out.index("warning: dataset warning") < out.index("skipped:")
    assert "gradnorm: needs capability GRADIENTS" in out


def test_console_warnings_are_yellow(run_parts):
    results, _, _ = run_parts
    buf = io.StringIO()
    print_results(results, Console(file=buf, width=250, force_terminal=True, color_system="standard"))
    assert "\x1b[1;33mwarning: Blind baseline:" in buf.getvalue()
