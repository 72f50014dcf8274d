"""Through the CLI on data whose samples are chunks of documents: the console shows the document-level metrics
(audit and report alike), under the blind check's verdict."""

from __future__ import annotations

import json

from lm_helpers import synthetic_texts
from test_cli import run_cli


def test_audit_and_report_print_document_metrics_under_the_blind_verdict(tiny_model_dir, tmp_path, cache_dir, capsys):
    texts = synthetic_texts(24, seed=7, max_words=60)
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "run"
    args = ("audit", "-m", tiny_model_dir, "-d", data, "-a", "loss,zlib", "--chunk-words", "8", "--bootstrap", "20")
    assert run_cli(*args, "-o", out) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    documents = results["documents"]
    assert documents["n_documents"] == 24 and documents["chunks_per_document"] > 1  # the premise: chunked data

    def check(console: str) -> None:
        assert console.lstrip().startswith("blind baseline ")  # the verdict comes first, also when it does not fire
        section = console[console.index(f"documents ({documents['n_documents']}, ") :]
        for method in documents["methods"]:
            assert f"{method} AUROC [CI]" in section
        for name in ("loss", "zlib"):
            row = next(line for line in section.splitlines() if line.strip("│┃ ").startswith(name + " "))
            for method, per in documents["methods"].items():
                auroc = per[name]["auroc"]
                assert f"{auroc['value']:.3f} [{auroc['ci_low']:.3f}, {auroc['ci_high']:.3f}]" in row, method

    check(printed)
    assert run_cli("report", out) == 0
    check(capsys.readouterr().out)
