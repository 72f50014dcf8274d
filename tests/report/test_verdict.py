"""The blind check's one-line verdict at the top of the console and the report, whether it fires or not; a column
that ranks nothing marked instead of ranked at 0.500; an epsilon bound of 0 not printed as a figure."""

from __future__ import annotations

import html
import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from miakit.evaluate import EvaluationSettings, evaluate_run
from miakit.evaluate.blind_verdict import BlindFigure, verdict_line
from miakit.report import build_results, print_results, render_html, write_run_files
from miakit.report.format import blind_verdict_text, sorted_attack_names

SHIFTED = "the split is shifted; attack figures are not evidence of membership"
CLEAN = "no sign of a shifted split"
BELOW = "below chance: the labels may be swapped or the split is adversarial"


def test_verdict_lines_as_the_user_reads_them():
    assert verdict_line([BlindFigure("blind_bow", 0.52, 0.44, 0.60)]) == f"blind baseline 0.52 [0.44, 0.60]: {CLEAN}"
    assert verdict_line([BlindFigure("blind_bow", 0.83, 0.78, 0.88)]) == f"blind baseline 0.83 [0.78, 0.88]: {SHIFTED}"
    assert verdict_line([BlindFigure("blind_bow", 0.38, 0.30, 0.46)]) == f"blind baseline 0.38 [0.30, 0.46]: {BELOW}"
    # the strongest of several decides, by its interval's lower bound (the warning's rule), and is named
    three = [BlindFigure("blind_bow", 0.60, 0.50, 0.70), BlindFigure("blind_date", 0.58, 0.56, 0.60),
             BlindFigure("blind_ngram", 0.5, 0.49, 0.51)]  # fmt: skip
    assert verdict_line(three) == f"blind baseline 0.58 [0.56, 0.60] (blind_date, strongest of 3): {SHIFTED}"
    # above chance but under the warning's threshold: said as it is, not as "no sign"
    assert "slightly above chance" in verdict_line([BlindFigure("blind_bow", 0.56, 0.52, 0.60)])
    assert verdict_line([BlindFigure("blind_bow", None)]) is None and verdict_line([]) is None


def run(blind_strength: float, *, columns: dict | None = None, n: int = 100, seed: int = 0):
    """An evaluated run of ``n`` + ``n`` samples: ``loss`` with signal, the given extra columns, one blind
    baseline of the given strength (negative: below chance)."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    cols = {"loss": 1.0 * labels + rng.normal(size=2 * n), **(columns or {})}
    blind = {"blind_bow": blind_strength * labels + rng.normal(size=2 * n)}
    evaluation = evaluate_run(labels, cols, blind=blind, settings=EvaluationSettings(200))
    results = build_results(evaluation.evaluations, evaluation.warnings, {}, evaluation.kinds)
    results.update(evaluation.results_figures())
    scores = pd.DataFrame({"id": [f"s{i}" for i in range(2 * n)], "label": labels, **cols, **blind})
    return results, scores


def console_text(results: dict) -> str:
    buf = io.StringIO()
    print_results(results, Console(file=buf, width=250, color_system=None))
    return buf.getvalue()


def report_text(tmp_path, results, scores) -> str:
    write_run_files(tmp_path, results, scores, {"model": {"name": "tiny"}})
    return html.unescape(render_html(tmp_path).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("strength", "meaning"), [(2.5, SHIFTED), (0.0, CLEAN), (-2.5, BELOW)])
def test_the_verdict_opens_the_console_and_the_report(tmp_path, strength, meaning):
    results, scores = run(strength)
    auroc = results["attacks"]["blind_bow"]["auroc"]
    expected = f"blind baseline {auroc['value']:.2f} [{auroc['ci_low']:.2f}, {auroc['ci_high']:.2f}]: {meaning}"
    assert blind_verdict_text(results) == expected
    out = console_text(results)
    assert out.splitlines()[0] == expected  # the first line, above the table
    text = report_text(tmp_path, results, scores)
    assert expected in text and text.index(expected) < text.index("<h2>Metrics</h2>")
    if strength == 0.0:
        assert "warning:" not in out  # the check did not fire: the verdict says so without a warning


def test_a_column_that_is_minus_inf_everywhere_is_marked_not_ranked(tmp_path):
    noise = np.random.default_rng(5).normal(size=200)
    results, scores = run(0.0, columns={"surp": np.full(200, -np.inf), "noise": noise})
    assert results["details"]["surp"]["unranked"].startswith("every score is -inf")
    assert sorted_attack_names(results)[-1] == "surp"  # below every ranked column, the blind baseline included
    out = console_text(results)
    row = next(line for line in out.splitlines() if line.strip("│┃ ").startswith("surp "))
    assert "0.500" not in row and "n/e" in row
    assert "surp: not ranked: every score is -inf" in out
    text = report_text(tmp_path, results, scores)
    assert "not ranked: every score is -inf" in text
    row_html = text[text.index('<td class="key">surp') :].split("</tr>")[0]
    assert "0.500" not in row_html


def test_an_epsilon_bound_of_zero_prints_no_figure(tmp_path):
    results, scores = run(0.0, n=20, columns={"loss": np.random.default_rng(3).normal(size=40)})
    assert results["epsilon"]["epsilon_lower_bound"] == 0.0  # the premise: 20 + 20 samples prove nothing
    out = console_text(results)
    assert "no evidence of leakage at this sample size" in out and "epsilon >=" not in out
    text = report_text(tmp_path, results, scores)
    assert "No evidence of leakage at this sample size" in text and "ε ≥" not in text


def test_a_positive_epsilon_bound_is_still_printed(tmp_path):
    labels = np.r_[np.ones(100, dtype=int), np.zeros(100, dtype=int)]
    results, scores = run(0.0, columns={"loss": 4.0 * labels + np.random.default_rng(4).normal(size=200)})
    eps = results["epsilon"]["epsilon_lower_bound"]
    assert eps >= 0.005
    assert f"loss implies epsilon >= {eps:.2f}" in console_text(results)
    assert f"<strong>ε ≥ {eps:.2f}</strong>" in report_text(tmp_path, results, scores)
