"""What the user sees of the audit figures: withheld epsilon, the selection note, Holm p-values, NaN chunks left
out of document statistics, the balanced-accuracy definition, and a ROC legend that agrees with the table."""

from __future__ import annotations

import html
import io
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from miakit.evaluate import BALANCED_ACCURACY_DEFINITION, EvaluationSettings, evaluate_run, evaluate_scores
from miakit.report import build_results, print_results, read_run, render_html, write_run_files
from miakit.report.plots import roc_figure


def chunked_run(shift: str | None = None, blind_separates: bool = False) -> tuple[dict, pd.DataFrame, dict]:
    """Four attacks on 16 + 16 documents of 4 chunks; two NaN chunks of one member document for ``loss``."""
    rng = np.random.default_rng(0)
    doc_labels = np.r_[np.ones(16, dtype=int), np.zeros(16, dtype=int)]
    labels = np.repeat(doc_labels, 4)
    effect = np.repeat(rng.normal(size=32), 4)
    groups = [f"doc{i:02d}" for i in np.repeat(np.arange(32), 4)]
    columns = {name: effect + strength * labels + rng.normal(size=128) for name, strength in
               (("loss", 1.5), ("zlib", 1.0), ("min_k", 0.5), ("noise", 0.0))}  # fmt: skip
    columns["loss"][[0, 1]] = np.nan
    blind = {"blind_bow": (2.0 * labels if blind_separates else 0) + rng.normal(size=128)}
    run = evaluate_run(labels, columns, blind=blind, groups=groups, shift=shift, settings=EvaluationSettings(200))
    results = build_results(run.evaluations, run.warnings, {}, run.kinds)
    results.update(run.results_figures())
    scores = pd.DataFrame({"id": [f"s{i}" for i in range(128)], "label": labels, **columns, **blind})
    manifest = {"evaluation": {"n_bootstrap": 200, "confidence": 0.95, "nan_policy": "lowest"}}
    return results, scores, manifest


def console_text(results: dict) -> str:
    buf = io.StringIO()
    print_results(results, Console(file=buf, width=250, color_system=None))
    return buf.getvalue()


def report_text(tmp_path, results, scores, manifest) -> str:
    write_run_files(tmp_path, results, scores, manifest)
    return html.unescape(render_html(tmp_path).read_text(encoding="utf-8"))


def test_withheld_epsilon_shows_the_reason_and_no_bound(tmp_path):
    shift = "members are from before 2017, non-members from after 2023"
    results, scores, manifest = chunked_run(shift=shift)
    assert results["epsilon"]["withheld"]
    out = console_text(results)
    assert "no epsilon bound for loss" in out and shift in out and "epsilon >=" not in out
    text = report_text(tmp_path, results, scores, manifest)
    assert "epsilon lower bound withheld" in text and shift in text
    assert "<strong>ε ≥" not in text


def test_blind_warning_withholds_and_a_clean_split_shows_the_bound_in_documents(tmp_path):
    withheld, _, _ = chunked_run(blind_separates=True)
    assert "a blind baseline, which never sees the model" in console_text(withheld)
    results, scores, manifest = chunked_run()
    eps = results["epsilon"]
    assert eps["epsilon_lower_bound"] < 0.005  # 16 + 16 documents prove no epsilon above 0: no figure is printed
    out = console_text(results)
    assert "no evidence of leakage at this sample size" in out and "16 + 16 documents" in out
    assert "epsilon >=" not in out
    text = report_text(tmp_path, results, scores, manifest)
    assert "No evidence of leakage at this sample size" in text and "ε ≥" not in text
    assert "Trials: documents: one trial per document" in text


def test_selection_note_and_holm_p_values_in_console_and_report(tmp_path):
    results, scores, manifest = chunked_run()
    note = results["selection"]["note"]
    assert results["selection"]["among"] == 4
    out = console_text(results)
    assert "selected: " + note[:60] in out
    pairs = results["comparison"]["pairs"]
    compared = out[out.index("attacks compared with loss") :]
    assert "p (raw)" in compared and "p (Holm)" in compared
    for name, pair in pairs.items():
        row = re.search(rf"│ {re.escape(name)} .*", compared).group(0)
        assert f"{pair['p_value']:.3g}" in row and f"{pair['p_value_holm']:.3g}" in row
    assert "Holm over 3 comparison(s) with loss" in out
    text = report_text(tmp_path, results, scores, manifest)
    assert note in text and "p (Holm)" in text and "p (raw)" in text
    compared = text[text.index("Attacks compared with the best") :]
    for name, pair in pairs.items():
        row = re.search(rf'<td class="key">{re.escape(name)}</td><td class="num">.*?</tr>', compared, re.S).group(0)
        assert f"{pair['p_value']:.3g}" in row and f"{pair['p_value_holm']:.3g}" in row


def test_dropped_chunks_and_resampling_shown(tmp_path):
    results, scores, manifest = chunked_run()
    assert results["documents"]["dropped_chunks"]["loss"] == {"chunks": 2, "documents": 1, "unscorable_documents": 0}
    out = console_text(results)
    documents = out[out.index("documents (32, 16 members)") :]
    assert re.search(r"│ loss .*│ +2 in 1 document\(s\) │", documents) and re.search(r"│ zlib .*│ +none │", documents)
    assert "whole documents" in out and "16 member and 16 non-member documents" in out
    text = report_text(tmp_path, results, scores, manifest)
    assert "NaN chunks left out" in text and "2 in 1 document(s)" in text
    assert "whole documents are resampled" in text


def test_balanced_accuracy_definition_shown(tmp_path):
    results, scores, manifest = chunked_run()
    assert "bal. acc.: at a threshold chosen on the other folds (out of fold" in console_text(results)
    assert BALANCED_ACCURACY_DEFINITION in report_text(tmp_path, results, scores, manifest)


def legend_aurocs(fig) -> dict[str, str]:
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    return dict(re.fullmatch(r"(.*) \(AUROC (\d\.\d{3})\)", t).groups() for t in texts if t != "chance")


@pytest.mark.parametrize("policy", ["omit", "lowest"])
def test_roc_legend_equals_the_metrics_table_under_the_runs_nan_policy(tmp_path, policy):
    """Many member NaNs: ranked lowest they pull AUROC down, omitted they do not; the legend of the ROC drawn
    from the run directory (as render_run draws it) must show the table's AUROC under the run's policy."""
    rng = np.random.default_rng(4)
    labels = np.r_[np.ones(100, dtype=int), np.zeros(100, dtype=int)]
    loss = labels + rng.normal(size=200)
    loss[:30] = np.nan
    scores = pd.DataFrame({"id": [str(i) for i in range(200)], "label": labels, "loss": loss,
                           "zlib": rng.normal(size=200)})  # fmt: skip
    evaluations = {c: evaluate_scores(labels, scores[c], n_bootstrap=0, nan_policy=policy) for c in ("loss", "zlib")}
    manifest = {"evaluation": {"n_bootstrap": 0, "confidence": 0.95, "nan_policy": policy}}
    write_run_files(tmp_path, build_results(evaluations), scores, manifest)
    _, read_back, _ = read_run(tmp_path)
    legend = legend_aurocs(roc_figure(read_back))
    for name, ev in evaluations.items():
        assert legend[name] == f"{ev.metrics['auroc'].value:.3f}"
    lowest = evaluate_scores(labels, loss, n_bootstrap=0).metrics["auroc"].value
    omitted = evaluate_scores(labels, loss, n_bootstrap=0, nan_policy="omit").metrics["auroc"].value
    assert f"{lowest:.3f}" != f"{omitted:.3f}"  # the policies really disagree here
