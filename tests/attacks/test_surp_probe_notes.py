"""SURP's note on samples without a token below tau (and a hint that suggests no tau already in use), and the
activation probe's warning when its best layer is below chance on the calibration set."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from lm_helpers import synthetic_texts
from miakit.attacks import ATTACKS
from miakit.cli import main
from miakit.data import Sample
from miakit.report import read_run
from miakit.run.runner import fit_attacks
from miakit.signals.engine import Engine
from miakit.targets.hf_causal import HFCausalLM

INF = float("-inf")


def hint(tau: float, scores: list[float], peers=()) -> str:
    return ATTACKS["surp"](tau=tau).score_hint(np.array(scores), [ATTACKS["surp"](tau=t) for t in peers])


def test_surp_hint_counts_and_never_suggests_the_tau_in_use():
    text = hint(4, [INF, -1.0, INF])
    assert text.startswith(
        "2 of 3 samples have no token with entropy < tau = 4 among their lowest 40% log-probs: scored -inf"
    )
    assert "tau=4]" not in text and "try surp[tau=6]" in text
    assert "try surp[tau=4]" in hint(2, [INF, -1.0])
    assert "try surp[tau=6]" in hint(2, [INF, -1.0], peers=[4])  # a sweep already runs tau = 4
    assert "try" not in hint(8, [INF, -1.0])  # no larger suggestion left: none
    assert "carries no information" in hint(2, [INF, INF]) and "carries no information" not in hint(2, [INF, -1.0])
    assert hint(2, [-1.0, -2.0]) is None


def min_entropy(model, tokenizer, texts) -> float:
    """The lowest next-token entropy over every scored position of ``texts``, in plain torch."""
    lowest = float("inf")
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text)["input_ids"]
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].double(), -1)
            lowest = min(lowest, float((-(logp.exp() * logp).sum(-1)).min()))
    return lowest


def twins(texts: list[str]) -> list[Sample]:
    """Each text once as a member and once as a non-member: a probe learns the opposite of the truth out of fold."""
    return [Sample(f"m{i}", t, 1) for i, t in enumerate(texts)] + [Sample(f"n{i}", t, 0) for i, t in enumerate(texts)]


def write_jsonl(path, samples):
    path.write_text("".join(json.dumps({"id": s.id, "text": s.text, "label": s.label}) + "\n" for s in samples))
    return path


def test_cli_notes_surp_infinities_and_a_probe_below_chance(
    tiny_model_dir, tiny_model, tiny_tokenizer, tmp_path, cache_dir, capsys
):
    texts = synthetic_texts(12, seed=21, max_words=12)
    data = [Sample(f"s{i}", t, i % 2) for i, t in enumerate(texts)]
    out = tmp_path / "run"
    args = [
        "audit", "--model", tiny_model_dir, "--data", write_jsonl(tmp_path / "data.jsonl", data), "--calibration",
        write_jsonl(tmp_path / "cal.jsonl", twins(synthetic_texts(12, seed=22, max_words=12))), "--attacks",
        "surp,surp[tau=4],activation_probe", "--out", out, "--bootstrap", "20", "--no-progress",
    ]  # fmt: skip
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results, scores, manifest = read_run(out)
    warnings = results["warnings"]

    # the random tiny model is never confident: every position's entropy is above 4 nats, so no sample has a token
    # below either tau and every SURP score is -inf
    assert min_entropy(tiny_model, tiny_tokenizer, texts) > 4
    # surp appears twice, so its default column is named with its tau
    assert np.isneginf(scores["surp[tau=2]"]).all() and np.isneginf(scores["surp[tau=4]"]).all()
    for column, tau in (("surp[tau=2]", 2), ("surp[tau=4]", 4)):
        (line,) = [w for w in warnings if w.startswith(f"{column}: ")]
        count = re.search(
            r"(\d+) of (\d+) samples have no token with entropy < tau = ([\d.]+) among their lowest 40%", line
        )
        assert count and count.groups()[:2] == ("12", "12") and float(count.group(3)) == tau
        assert "surp[tau=4]" not in line.removeprefix(f"{column}: ")  # tau = 4 is in use: never suggested
        assert "try surp[tau=6]" in line

    auroc = manifest["calibration"]["details"]["activation_probe"]["layer_auroc"]
    best = max(auroc)
    assert best < 0.5
    expected = (
        f"activation_probe: best layer's out-of-fold AUROC {best:.2f} is below chance; its scores are not evidence"
    )
    assert expected in warnings
    assert expected in " ".join((captured.out + captured.err).split())


def test_probe_above_chance_says_nothing(tiny_model, tiny_tokenizer):
    members = [f"The king and the queen rode to the tower {w}." for w in ("at night", "in winter", "by ship")] * 3
    nonmembers = [f"Bread, iron, silver: {w} market {w} {w}." for w in ("village", "city", "forest")] * 3
    calibration = [Sample(f"m{i}", t, 1) for i, t in enumerate(members)]
    calibration += [Sample(f"n{i}", t, 0) for i, t in enumerate(nonmembers)]
    attack = ATTACKS["activation_probe"]()
    fit_attacks(
        Engine({None: HFCausalLM.from_model(tiny_model, tiny_tokenizer)}, None, progress=False),
        {"p": attack},
        calibration,
    )
    assert max(attack.layer_auroc_) >= 0.5
    assert attack.notes() == []


@pytest.mark.parametrize("best", [0.49, 0.5])
def test_probe_warning_threshold_is_chance(best):
    attack = ATTACKS["activation_probe"]()
    attack.probe_, attack.layer_auroc_, attack.best_layer_ = object(), [0.1, best], 1
    assert bool(attack.notes()) == (best < 0.5)
