"""Verbatim completion (exact-match share and ROUGE-L) on hand-built greedy continuations against independent
computations (a plain loop, rouge-score), and its orientation on the trained tiny world."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rouge_score import rouge_scorer

from miakit.attacks import ATTACKS, build_attacks
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.signals import Generation, GenerationRequest
from miakit.signals.engine import Signals

LONG = " ".join(f"w{i}" for i in range(130))  # 65 words of prompt, 65 of truth: 50 compared
TEXTS = [
    ("exact", "Twas brillig, and the slithy toves did gyre and gimble in the wabe", 1),
    ("case", "All mimsy were the borogoves, And the mome raths outgrabe today", 1),
    ("long", LONG, 1),
    ("miss", "Beware the Jabberwock, my son! The jaws that bite, the claws that catch!", 0),
    ("unicode", "Über naïve café — ÉCOLE 42 🙂 the end of it all", 0),
    ("one", "Jabberwock", 0),
]
SAMPLES = [Sample(i, t, label) for i, t, label in TEXTS]


def continuation(sample: Sample, prompt: str, rng: random.Random) -> str:
    truth = sample.text[len(prompt) :].split()
    if sample.id == "exact":
        return " " + " ".join(truth) + " and more words after it"
    if sample.id == "case":
        return " " + " ".join(truth[:3]) + " " + " ".join(truth[3:]).upper()  # exact up to word 3
    if sample.id == "long":
        return " " + " ".join(truth[:20]) + " wrong " + " ".join(truth[21:])  # 20 of 50 before the first miss
    if sample.id == "unicode":
        return "\n" + " ".join(reversed(truth))
    return " " + " ".join(rng.choice(["the", "jaws", "claws", "bite,", "that"]) for _ in range(9))


def hand_signals(attack) -> Signals:
    rng = random.Random(0)
    entries = {}
    for request in attack.requests(SAMPLES):
        sample = next(s for s in SAMPLES if s.text.startswith(request.prompt) and s.id != "one")
        text = continuation(sample, request.prompt, rng)
        entries[request] = Generation((text,), (tuple(range(len(text.split()))),))
    return Signals(entries)


def truth_and_continuation(sample: Sample, signals: Signals, m: int) -> tuple[list[str], list[str]] | None:
    words = sample.text.split()
    k = len(words) // 2
    if k == 0:
        return None
    (generation,) = [g for r, g in signals.items() if r.prompt.split() == words[:k]]
    truth = words[k:][:m]
    return truth, generation.texts[0].split()[: len(truth)]


def test_requests_are_one_shared_greedy_continuation_of_the_first_half():
    match, rouge = ATTACKS["verbatim_match"](), ATTACKS["verbatim_rouge_l"]()
    requests = match.requests(SAMPLES)
    assert requests == rouge.requests(SAMPLES)  # running both generates once
    assert len(requests) == 5  # the one-word text asks for nothing
    assert requests[0] == GenerationRequest("Twas brillig, and the slithy toves", n=1, max_new_tokens=100)
    assert all(r.greedy for r in requests)


def test_verbatim_match_is_the_share_reproduced_before_the_first_mistake():
    attack = ATTACKS["verbatim_match"]()
    signals = hand_signals(attack)
    got = attack.score(SAMPLES, signals)
    want = []
    for s in SAMPLES:
        parts = truth_and_continuation(s, signals, 50)
        if parts is None:
            want.append(np.nan)
            continue
        truth, cont = parts
        k = 0
        while k < len(truth) and k < len(cont) and truth[k] == cont[k]:
            k += 1
        want.append(k / len(truth))
    np.testing.assert_allclose(got, want, rtol=0, atol=0)
    assert got[:3].tolist() == [1.0, 3 / 6, 20 / 50] and np.isnan(got[5])  # hand-checked
    for s, value in zip(SAMPLES, got, strict=True):
        assert attack.reference_score(s, signals) == pytest.approx(value, nan_ok=True)


@pytest.mark.parametrize("suffix_words", [50, 4])
def test_verbatim_rouge_l_equals_rouge_score(suffix_words):
    attack = ATTACKS["verbatim_rouge_l"](suffix_words=suffix_words)
    signals = hand_signals(attack)
    got = attack.score(SAMPLES, signals)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    want = []
    for s in SAMPLES:
        parts = truth_and_continuation(s, signals, suffix_words)
        if parts is None:
            want.append(np.nan)
            continue
        truth, cont = parts
        want.append(scorer.score(" ".join(truth), " ".join(cont))["rougeL"].fmeasure)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert got[0] == 1.0 and got[1] == 1.0  # ROUGE lower-cases: the upper-cased copy still matches in order
    for s, value in zip(SAMPLES, got, strict=True):
        assert attack.reference_score(s, signals) == pytest.approx(value, rel=1e-12, nan_ok=True)


def test_bad_parameters_fail_when_the_plan_is_built():
    with pytest.raises(MiakitError, match="suffix_words must be an integer of at least 1"):
        build_attacks("verbatim_match[suffix_words=0]")
    with pytest.raises(MiakitError, match="prefix_ratio must be in"):
        build_attacks("verbatim_rouge_l[prefix_ratio=0]")
