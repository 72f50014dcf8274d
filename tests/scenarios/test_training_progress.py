"""Training a scenario's target shows progress when the output is piped (CI logs): plain lines, no bar."""

from __future__ import annotations

import re

from lm_helpers import make_model, synthetic_texts
from miakit.scenarios.training import train_rows


def test_piped_training_logs_plain_step_lines(tiny_tokenizer, capsys):
    model = make_model(len(tiny_tokenizer))
    rows = [tiny_tokenizer(t)["input_ids"] for t in synthetic_texts(20, seed=5, max_words=12)]
    pad = tiny_tokenizer.pad_token_id or 0
    losses = train_rows(
        model, rows, pad, epochs=2, batch_size=4, lr=1e-3, seed=0, progress=True, description="training target"
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("training target: ")]
    steps = [int(m.group(1)) for m in (re.match(r"training target: (\d+)/10 steps", line) for line in lines) if m]
    # 20 rows in batches of 4 for 2 epochs: 10 steps, one line per tenth, the last at 100%
    assert len(losses) == 2 and steps == sorted(steps) and steps[-1] == 10 and len(steps) == 10
    assert lines[-1].startswith("training target: 10/10 steps (100%)")
    assert "\x1b[" not in err  # no terminal control codes in a log


def test_training_without_progress_is_silent(tiny_tokenizer, capsys):
    model = make_model(len(tiny_tokenizer))
    rows = [tiny_tokenizer(t)["input_ids"] for t in synthetic_texts(8, seed=6, max_words=12)]
    train_rows(model, rows, tiny_tokenizer.pad_token_id or 0, epochs=1, batch_size=4, lr=1e-3, seed=0)
    assert capsys.readouterr().err == ""
