"""Ctrl-C (SIGINT) at every stage of ``miakit audit``: exit 130, one clear line, no traceback, and a rerun
resumes from the store.

The scoring case sends SIGINT from outside while the store fills, as a user's Ctrl-C does. The load and
evaluation cases need the signal at a precise moment: a small driver process runs the real CLI and sends SIGINT
to itself as the real stage function (``HFCausalLM.from_pretrained``, ``evaluate_run``) is entered.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from lm_helpers import synthetic_texts

DRIVER = """
import importlib, os, signal, sys
from miakit.cli import main
where, args = sys.argv[1], sys.argv[2:]
module, _, attr = where.partition(":")
owner = importlib.import_module(module)
*path, name = attr.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, name)
def interrupted(*a, **k):
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as this stage begins
    return real(*a, **k)
setattr(owner, name, staticmethod(interrupted) if isinstance(owner, type) else interrupted)
main(args)
"""

LOAD = "miakit.targets.hf_causal:HFCausalLM.from_pretrained"
EVALUATION = "miakit.evaluate.evaluation:evaluate_run"


def _data(tmp_path: Path, n: int) -> tuple[Path, int]:
    texts = synthetic_texts(n, seed=43, min_words=4, max_words=16)
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    return path, len(set(texts))


def _audit_args(model: Path, data: Path) -> list[str]:
    """An audit without its --out (each run gets its own folder)."""
    return ["audit", "-m", str(model), "-d", str(data), "-a", "loss,zlib", "--batch-size", "1", "--bootstrap", "0"]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "MIAKIT_CACHE": str(cache), "OMP_NUM_THREADS": "1", "MIAKIT_DEBUG": ""}


def _rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _assert_interrupted(done: subprocess.CompletedProcess, out: Path) -> None:
    assert done.returncode == 130, (done.returncode, done.stderr[-3000:])
    assert "interrupted (Ctrl-C)" in done.stderr and "rerun" in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr[-3000:]
    for name in ("results.json", "manifest.json", "scores.csv", "report.html"):
        assert not (out / name).exists(), f"an interrupted run wrote {name}"


def _driven(stage: str, args: list[str], cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, stage, *args], env=_env(cache), capture_output=True, text=True, timeout=300
    )


def test_ctrl_c_at_model_load_exits_130_with_a_message_and_stores_nothing(tiny_model_dir, tmp_path):
    data, _ = _data(tmp_path, 12)
    cache, out = tmp_path / "cache", tmp_path / "run"
    done = _driven(LOAD, [*_audit_args(tiny_model_dir, data), "-o", str(out)], cache)
    _assert_interrupted(done, out)
    assert _rows(cache / "store.sqlite") == 0


def test_ctrl_c_while_scoring_and_at_evaluation_then_a_rerun_resumes_from_the_store(tiny_model_dir, tmp_path):
    data, n_unique = _data(tmp_path, 80)
    cache = tmp_path / "cache"
    store = cache / "store.sqlite"
    args = [sys.executable, "-m", "miakit.cli", *_audit_args(tiny_model_dir, data)]

    # 1. Ctrl-C part-way through the forward passes
    scoring = subprocess.Popen(
        [*args, "-o", str(tmp_path / "scoring")],
        env=_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while _rows(store) < 10 and time.time() < deadline and scoring.poll() is None:
        time.sleep(0.02)
    scoring.send_signal(signal.SIGINT)
    stdout, stderr = scoring.communicate(timeout=120)
    stored = _rows(store)
    _assert_interrupted(subprocess.CompletedProcess(args, scoring.returncode, stdout, stderr), tmp_path / "scoring")
    assert 0 < stored < n_unique, "the run must be interrupted part-way through the forward passes"

    # 2. the rerun computes only what is missing, then Ctrl-C as the evaluation begins
    evaluation = _driven(EVALUATION, [*args[3:], "-o", str(tmp_path / "evaluation")], cache)
    _assert_interrupted(evaluation, tmp_path / "evaluation")
    assert _rows(store) >= n_unique, "every forward pass is stored before the evaluation starts"

    # 3. the final rerun reads every pass from the store and completes
    final = subprocess.run([*args, "-o", str(tmp_path / "final")], env=_env(cache), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-3000:]
    counts = json.loads((tmp_path / "final" / "manifest.json").read_text())["counts"]
    assert counts["forward_passes_computed"] == 0
    assert counts["forward_passes_cached"] == n_unique
    scores = pd.read_csv(tmp_path / "final" / "scores.csv")
    assert len(scores) == 80 and scores["loss"].notna().all()
