"""``--out`` is checked before any work: a file, an unwritable folder or a folder of the user's own files is
refused (exit 2, nothing written, the user's files untouched); a previous run's folder is cleared of that run's
files (only miakit's) before the new run writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import miakit
from cli_helpers import run_cli
from lm_helpers import synthetic_texts
from miakit.errors import MiakitError
from miakit.run.writer import RUN_FILES


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "data.jsonl"
    texts = synthetic_texts(12, seed=5, max_words=20)
    records = [{"text": t, "label": i % 2} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def flat(text: str) -> str:
    """Text without whitespace: the console wraps long paths anywhere."""
    return "".join(text.split())


def refused(capsys, *args: object) -> str:
    """Run an audit that must stop at the --out check (the model does not even exist), return its message."""
    code = run_cli("audit", "--model", "no-such-model-dir", *args)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err and "no-such-model" not in err, err
    return err


def test_out_is_a_file(tmp_path, data, capsys, cache_dir):
    target = tmp_path / "results.txt"
    target.write_text("my notes\n")
    err = refused(capsys, "--data", data, "--out", target)
    assert flat(f"'{target}' (--out) is a file, not a folder") in flat(err)
    assert target.read_text() == "my notes\n" and not cache_dir.exists()
    err = refused(capsys, "--data", data, "--out", target / "sub")
    assert flat(f"'{target}' is a file") in flat(err) and target.read_text() == "my notes\n"


def test_out_in_an_unwritable_folder(tmp_path, data, capsys):
    if os.geteuid() == 0:  # root writes anywhere a mode forbids; a pseudo file system refuses it too
        if not Path("/sys").is_dir():
            if os.environ.get("CI") == "true":
                pytest.fail("CI runs as root without /sys: no folder here refuses writes to test with")
            pytest.skip("running as root without /sys")
        parent = Path("/sys")
    else:
        parent = tmp_path / "locked"
        parent.mkdir()
        parent.chmod(0o555)
    try:
        err = refused(capsys, "--data", data, "--out", parent / "run")
        assert "(--out) is not writable" in err and flat(f"'{parent}'") in flat(err)
        assert not (parent / "run").exists()
    finally:
        parent.chmod(0o755) if parent != Path("/sys") else None


def test_a_folder_of_the_users_files_is_refused_and_left_as_it_was(tmp_path, data, capsys):
    folder = tmp_path / "analysis"
    folder.mkdir()
    (folder / "scores.csv").write_text("id,score\nmine,1\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    err = refused(capsys, "--data", data, "--out", folder)
    assert "is not empty and holds no miakit run" in err and "manifest.json" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # a manifest.json that is not miakit's does not make the folder a run
    (folder / "manifest.json").write_text('{"name": "my project"}')
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert "holds no miakit run" in refused(capsys, "--data", data, "--out", folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # the same through the blind command and the Python API
    assert run_cli("blind", data, "--out", folder) == 2
    with pytest.raises(MiakitError, match="holds no miakit run"):
        miakit.blind(data, out=str(folder))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_an_empty_or_new_folder_is_used(tmp_path, data):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("blind", data, "--out", empty, "--bootstrap", "0") == 0
    assert (empty / "manifest.json").is_file()
    fresh = tmp_path / "a" / "b" / "new"
    assert run_cli("blind", data, "--out", fresh, "--bootstrap", "0") == 0
    assert (fresh / "scores.csv").is_file()


def test_a_previous_run_is_cleared_of_its_files_only(tiny_model_dir, tmp_path, data, cache_dir):
    out = tmp_path / "run"
    first = ("audit", "--model", tiny_model_dir, "--data", data, "--attacks", "loss", "--bootstrap", "0")
    assert run_cli(*first, "--chunk-words", "6", "--out", out, "--no-progress") == 0
    assert (out / "documents.csv").is_file()
    (out / "notes.txt").write_text("kept")  # the user's own file beside the run
    assert run_cli("blind", data, "--out", out, "--bootstrap", "0") == 0
    assert not (out / "documents.csv").exists()  # stale from the audit: gone
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "blind baselines only"
    assert (out / "notes.txt").read_text() == "kept"
    names = {p.name for p in out.iterdir()}
    assert names - set(RUN_FILES) == {"notes.txt"}
    scores = (out / "scores.csv").read_text().splitlines()[0]
    assert "loss" not in scores and "blind_bow" in scores


def test_infer_dataset_checks_its_folder_first(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("mine")
    code = run_cli(
        "infer-dataset", "--model", "m", "--suspect", "gone.txt", "--validation", "gone2.txt", "--out", target
    )
    err = capsys.readouterr().err
    assert code == 2 and "is a file, not a folder" in " ".join(err.split()) and "gone" not in err
    assert target.read_text() == "mine"
