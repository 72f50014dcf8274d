"""ReCaLL and Con-ReCall keep only the prefix shots that fit whole in the context, and say how many."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from lm_helpers import synthetic_texts
from miakit.attacks import ATTACKS
from miakit.cli import main
from miakit.data import Sample
from miakit.report import read_run
from miakit.run.runner import fit_attacks
from miakit.signals.engine import Engine
from miakit.targets.hf_causal import HFCausalLM

CONTEXT = 64  # the tiny model's n_positions


@pytest.fixture(scope="module")
def engine(tiny_model, tiny_tokenizer):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    assert target.max_length == CONTEXT
    return Engine({None: target}, None, progress=False)


def calibration(min_words: int, max_words: int) -> list[Sample]:
    nonmembers = synthetic_texts(12, seed=5, min_words=min_words, max_words=max_words)
    members = synthetic_texts(12, seed=7, min_words=min_words, max_words=max_words)
    return [Sample(f"cn{i}", t, 0) for i, t in enumerate(nonmembers)] + [
        Sample(f"cm{i}", t, 1) for i, t in enumerate(members)
    ]


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text)["input_ids"])


def shots_that_fit(tokenizer, shots: list[Sample], samples: list[Sample]) -> int:
    """How many of the first shots, joined by a space, fit in the context beside a median-length calibration text."""
    room = statistics.median_high(n_tokens(tokenizer, s.text) for s in samples)
    return max(
        (
            k
            for k in range(len(shots) + 1)
            if n_tokens(tokenizer, " ".join(s.text for s in shots[:k])) + room <= CONTEXT
        ),
        default=0,
    )


def drawn(samples: list[Sample], label: int, n: int, seed: int) -> list[Sample]:
    return random.Random(seed).sample([s for s in samples if s.label == label], n)


def test_recall_keeps_the_shots_that_fit(engine, tiny_tokenizer):
    cal = calibration(4, 7)
    attack = ATTACKS["recall"](n_shots=10, seed=2)
    fit_attacks(engine, {"recall": attack}, cal)
    shots = drawn(cal, 0, 10, 2)
    k = shots_that_fit(tiny_tokenizer, shots, cal)
    assert 1 <= k < 10  # the case under test: some shots fit, not all
    assert [s.id for s in attack.shots_] == [s.id for s in shots[:k]]
    room = statistics.median_high(n_tokens(tiny_tokenizer, s.text) for s in cal)
    assert attack.notes() == [
        f"{k} of 10 prefix shots fit in the {CONTEXT}-token context (leaving room for a {room}-token text, the "
        "calibration texts' median length; longer texts see the prefix cut from the left)"
    ]
    assert attack.fitted_details()["shots"] == k
    prefix = " ".join(s.text for s in shots[:k]) + " "
    texts = ["A king and a queen.", "The river was silver in the winter night."]
    contexts = {r.context for r in attack.requests([Sample(f"x{i}", t) for i, t in enumerate(texts)])}
    assert contexts == {"", prefix}


def test_con_recall_uses_as_many_shots_of_each_kind(engine, tiny_tokenizer):
    cal = calibration(4, 7)
    attack = ATTACKS["con_recall"](n_shots=10, seed=3)
    fit_attacks(engine, {"con_recall": attack}, cal)
    nonmembers, members = drawn(cal, 0, 10, 3), drawn(cal, 1, 10, 3)
    k = min(shots_that_fit(tiny_tokenizer, nonmembers, cal), shots_that_fit(tiny_tokenizer, members, cal))
    assert 1 <= k < 10
    assert [s.id for s in attack.nonmember_shots_] == [s.id for s in nonmembers[:k]]
    assert [s.id for s in attack.member_shots_] == [s.id for s in members[:k]]
    assert attack.notes()[0].startswith(f"{k} of 10 prefix shots fit in the {CONTEXT}-token context")


def test_no_whole_shot_fits_keeps_one_and_says_so(engine, tiny_tokenizer):
    cal = calibration(30, 40)
    attack = ATTACKS["recall"](n_shots=10, seed=0)
    fit_attacks(engine, {"recall": attack}, cal)
    assert shots_that_fit(tiny_tokenizer, drawn(cal, 0, 10, 0), cal) == 0
    assert len(attack.shots_) == 1
    room = statistics.median_high(n_tokens(tiny_tokenizer, s.text) for s in cal)
    assert attack.notes() == [
        f"0 of 10 prefix shots fit whole in the {CONTEXT}-token context beside a {room}-token text (the "
        "calibration texts' median length): the prefix is one shot, cut from the left to fit"
    ]


def test_fewer_calibration_nonmembers_than_shots_is_said(engine):
    cal = [Sample("a", "The king.", 0), Sample("b", "A horse.", 0), Sample("c", "The ship.", 1)]
    attack = ATTACKS["recall"](n_shots=10)
    fit_attacks(engine, {"recall": attack}, cal)
    assert len(attack.shots_) == 2
    assert attack.notes() == ["2 of 10 prefix shots drawn: the calibration set has no more non-members"]


def write_jsonl(path, samples):
    path.write_text("".join(json.dumps({"id": s.id, "text": s.text, "label": s.label}) + "\n" for s in samples))
    return path


def test_cli_warns_and_records_the_shots(tiny_model_dir, tiny_tokenizer, tmp_path, cache_dir, capsys):
    cal = calibration(4, 7)
    data = [Sample(f"s{i}", t, i % 2) for i, t in enumerate(synthetic_texts(12, seed=8, min_words=4, max_words=9))]
    out = tmp_path / "run"
    args = [
        "audit", "--model", tiny_model_dir, "--data", write_jsonl(tmp_path / "data.jsonl", data), "--calibration",
        write_jsonl(tmp_path / "cal.jsonl", cal), "--attacks", "recall", "--out", out, "--bootstrap", "20",
        "--no-progress",
    ]  # fmt: skip
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    k = shots_that_fit(tiny_tokenizer, drawn(cal, 0, 10, 0), cal)
    results, _, manifest = read_run(out)
    warning = f"recall: {k} of 10 prefix shots fit in the {CONTEXT}-token context"
    assert any(w.startswith(warning) for w in results["warnings"])
    assert warning in " ".join((captured.out + captured.err).split())
    assert manifest["calibration"]["details"]["recall"]["shots"] == k
