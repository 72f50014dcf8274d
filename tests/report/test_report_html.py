"""report.html: self-contained, shows metrics/warnings/skipped/figures, escapes every dataset string."""

from __future__ import annotations

import base64
import html
import re

from report_helpers import HOSTILE

from miakit.report import render_html, render_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_render_run_writes_png_and_html(run_dir):
    path = render_run(run_dir)
    assert path == run_dir / "report.html"
    assert (run_dir / "roc.png").read_bytes().startswith(PNG_MAGIC)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_hostile_strings_are_escaped(run_dir):
    text = render_html(run_dir).read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    escaped = html.escape(HOSTILE, quote=False)
    assert escaped in text  # shown, as text: attack name, warning, skipped reason, manifest value
    assert text.count(escaped) >= 4


def test_self_contained_no_external_resources(run_dir):
    text = render_html(run_dir).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 1 + 1  # the ROC and one figure of every column's histogram
    assert all(base64.b64decode(b).startswith(PNG_MAGIC) for b in images)


def test_metrics_table_sorted_by_auroc_with_cis_and_ne(run_dir, run_parts):
    results, _, _ = run_parts
    text = render_html(run_dir).read_text(encoding="utf-8")
    start = text.index('<table class="metrics">')
    table = text[start : text.index("</table>", start)]
    names = [html.unescape(n) for n in re.findall(r'<td class="key">(.*?)</td>', table)]
    aurocs = {name: m["auroc"]["value"] for name, m in results["attacks"].items()}
    assert names == sorted(aurocs, key=lambda n: -aurocs[n])
    loss = results["attacks"]["loss"]["auroc"]
    assert f"{loss['value']:.3f}" in table and f"[{loss['ci_low']:.3f}, {loss['ci_high']:.3f}]" in table
    assert table.count("n/e") == 5  # TPR@0.1%FPR for every column: 200 non-members < 1000
    assert 'title="not estimable: 200 non-members &lt; 1/0.001' in table
    assert "not estimable: 200 non-members &lt; 1/0.001" in text[text.index('<ol class="footnotes">') :]


def test_warnings_first_blind_highlighted_and_skipped_listed(run_dir):
    text = render_html(run_dir).read_text(encoding="utf-8")
    warnings = re.findall(r"<li( class=\"blind\")?>(.*?)</li>", text[text.index('<ul class="warnings">') :])
    assert warnings[0][0] and warnings[0][1].startswith("Blind baseline:")
    assert text.index('<ul class="warnings">') < text.index('<table class="metrics">')
    assert "needs capability GRADIENTS" in text and "gradnorm" in text


def test_manifest_and_definitions_rendered(run_dir):
    text = render_html(run_dir).read_text(encoding="utf-8")
    assert "<title>miakit report: tiny-gpt</title>" in text
    for key in (
        "model.revision",
        "config.seed",
        "data_hash",
        "counts.forward_passes",
        "fingerprints.tokenizer",
    ):
        assert f'<td class="key">{key}</td>' in text
    assert "f" * 64 in text
    assert "largest TPR among empirical ROC points with FPR &le; &beta;" in text
    assert "B = 200 resamples" in text and "stratified" in text
    assert "<code>lowest</code>" in text


def test_manifest_without_settings_says_default(tmp_path, run_parts):
    from miakit.report import write_run_files

    results, scores, manifest = run_parts
    manifest = {k: v for k, v in manifest.items() if k != "evaluation"}
    write_run_files(tmp_path, results, scores, manifest)
    text = render_html(tmp_path).read_text(encoding="utf-8")
    assert "B = 1000 resamples (library default" in text
