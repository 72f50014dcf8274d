"""Progress a user sees on long work when output is not a terminal (CI, a pipe): plain lines on stderr while
signals are scored, a line per blind baseline in ``miakit blind``, and nothing with ``--no-progress``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lm_helpers import synthetic_texts
from miakit.cli import main
from miakit.progress import PlainProgress

LINE = re.compile(r": token statistics: (\d+)/(\d+) tokens \((\d+)%\), \d+ s$")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    texts = synthetic_texts(40, seed=5, max_words=30)
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    return path


def test_piped_audit_logs_plain_progress_lines(tiny_model_dir, data, tmp_path, cache_dir):
    args = ["audit", "-m", str(tiny_model_dir), "-d", str(data), "-a", "loss", "--bootstrap", "10", "--batch-size", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "miakit.cli", *args, "-o", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**os.environ, "MIAKIT_CACHE": str(cache_dir)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [m for m in map(LINE.search, done.stderr.splitlines()) if m]
    assert len(lines) >= 5, done.stderr
    done_tokens = [int(m.group(1)) for m in lines]
    total = int(lines[-1].group(2))
    assert done_tokens == sorted(done_tokens) and done_tokens[-1] == total
    assert lines[-1].group(3) == "100"
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert total == manifest["counts"]["tokens_computed"]
    assert "\x1b[" not in done.stderr  # no terminal control codes in a log


def test_no_progress_logs_nothing(tiny_model_dir, data, tmp_path, cache_dir, capsys):
    args = ["audit", "-m", str(tiny_model_dir), "-d", str(data), "-a", "loss", "--bootstrap", "10"]
    try:
        main([*args, "--no-progress", "-o", str(tmp_path / "quiet")])
    except SystemExit as exc:
        assert not exc.code
    assert (tmp_path / "quiet" / "scores.csv").is_file()
    assert not any(map(LINE.search, capsys.readouterr().err.splitlines()))


def test_blind_prints_a_line_per_baseline(data, tmp_path, capsys):
    try:
        main(["blind", str(data), "--bootstrap", "10", "--out", str(tmp_path / "blind")])
    except SystemExit as exc:
        assert not exc.code
    err = capsys.readouterr().err.splitlines()
    steps = [line for line in err if line.startswith("blind baselines:")]
    assert [re.sub(r", \d+ s$", "", line) for line in steps] == [
        "blind baselines: 1/3 bag-of-words ensemble (40 texts)",
        "blind baselines: 2/3 dates (40 texts)",
        "blind baselines: 3/3 n-gram markers (40 texts)",
        "blind baselines: done",
    ]


def test_plain_progress_reports_every_tenth_and_the_end(capsys):
    bar = PlainProgress("scoring", 400, "texts")
    for _ in range(400):
        bar.advance(1)
    bar.finish()
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r", \d+ s$", "", line) for line in lines] == [
        f"scoring: {40 * i}/400 texts ({10 * i}%)" for i in range(1, 11)
    ]


def test_plain_progress_reports_slow_work_by_time(capsys):
    bar = PlainProgress("scoring", 1000, "tokens", every_s=0.0)  # every advance is "30 s later"
    bar.advance(3)
    bar.advance(4)
    lines = capsys.readouterr().err.splitlines()
    assert [re.sub(r", \d+ s$", "", line) for line in lines] == [
        "scoring: 3/1000 tokens (0%)",
        "scoring: 7/1000 tokens (0%)",
    ]
