"""`miakit report` on an `infer-dataset` run folder renders that folder's report; on a folder that is no run it
says so and names only commands that exist."""

from __future__ import annotations

import json
import re

from lm_helpers import synthetic_texts
from miakit.cli import app
from test_cli import run_cli


def _write(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_report_rerenders_a_dataset_inference_run(tiny_model_dir, tmp_path, cache_dir, capsys):
    texts = synthetic_texts(48, seed=11)
    suspect, validation = _write(tmp_path / "s.jsonl", texts[:16]), _write(tmp_path / "v.jsonl", texts[16:])
    out = tmp_path / "di"
    args = ("infer-dataset", "-m", tiny_model_dir, "--suspect", suspect, "--validation", validation)
    assert run_cli(*args, "-a", "loss,zlib", "--bootstrap", "20", "-o", out) == 0
    results = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    (out / "report.html").unlink()
    (out / "pvalues.png").unlink()

    assert run_cli("report", out) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "miakit run" not in captured.out + captured.err
    printed = " ".join(captured.out.split())  # as read, whatever the console's width
    assert f"Dataset inference: p = {results['p_value']:.3g}" in printed
    assert f"against itself): p = {results['false_positive_p_value']:.3g}" in printed
    assert str(out / "report.html") in captured.out.replace("\n", "")
    report = (out / "report.html").read_text()
    assert "<h1>Dataset inference</h1>" in report and f"p = {results['p_value']:.3g}" in report
    assert (out / "pvalues.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_on_a_folder_that_is_no_run_names_only_real_commands(tmp_path, capsys):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    assert run_cli("report", folder) == 2
    err = capsys.readouterr().err
    assert "is not a miakit run directory" in " ".join(err.split()) and "Traceback" not in err
    commands = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    named = re.findall(r"['`]miakit ([a-z-]+)", " ".join(err.split()))  # the commands it tells the user to run
    assert named and set(named) <= commands, named
    assert not (folder / "report.html").exists()  # nothing written into a folder that is not a run
