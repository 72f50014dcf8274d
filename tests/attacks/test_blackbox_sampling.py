"""SaMIA, SaMIA*zlib and CDD on hand-built generations against independent computations (rouge-score, zlib, a
plain edit distance), their requests and defaults, and their orientation on the trained tiny world."""

from __future__ import annotations

import random
import zlib

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer

from miakit.attacks import ATTACKS, build_attacks
from miakit.attacks.base import ModelFacts
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.evaluate import auroc
from miakit.run.runner import collect_signals
from miakit.signals import Generation, GenerationRequest
from miakit.signals.engine import Signals
from miakit.testing import permutation_threshold

TEXTS = [
    ("m0", "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age", 1),
    ("n0", "Call me Ishmael.  Some years ago -- never mind how long precisely -- having little\nmoney in my purse", 0),
    ("m1", "In a hole in the ground there lived a hobbit. Not a nasty, dirty, wet hole", 1),
    ("n1", "Über naïve café: the the the THE The the. ÉCOLE 42 🙂", 0),
    ("two", "Hello world", 1),
    ("one", "Hello", 0),
    ("empty", "   ", 0),
]
SAMPLES = [Sample(i, t, label) for i, t, label in TEXTS]
FILLER = ["the", "The", "of", "times,", "hole", "ground", "money", "a", "🙂", "--", "\n", "café:", "it", "was"]


class SpaceTokenizer:
    """Words as SaMIA's reference code has them: whitespace-separated, case and punctuation kept."""

    def tokenize(self, text):
        return text.split()


def fake_continuation(rng: random.Random, truth: list[str]) -> str:
    """Some true words in order, some filler, odd spacing; sometimes nothing at all."""
    if rng.random() < 0.15:
        return ""
    out = []
    for word in truth:
        if rng.random() < 0.5:
            out.append(word)
        if rng.random() < 0.4:
            out.append(rng.choice(FILLER))
    return (" " if rng.random() < 0.5 else "") + (" " if rng.random() < 0.5 else "\n").join(out)


def fake_signals(attack, samples, seed: int = 0) -> Signals:
    """A Generation for every request of ``attack``: continuations built from the true suffix and filler."""
    rng = random.Random(seed)
    entries = {}
    for request in attack.requests(samples):
        text = next(s.text for s in samples if s.text.startswith(request.prompt) and attack.split(s.text))
        truth = text[len(request.prompt) :].split()
        texts = tuple(fake_continuation(rng, truth) for _ in range(request.n))
        ids = tuple(tuple(rng.randrange(5) for _ in range(rng.randint(0, 40))) for _ in texts)
        entries[request] = Generation(texts, ids)
    return Signals(entries)


def true_split(text: str) -> tuple[list[str], list[str]]:
    words = text.split()
    k = int(len(words) * 0.5)
    return words[:k], words[k:]


@pytest.mark.parametrize("name", ["samia", "samia_zlib"])
def test_samia_equals_rouge_score_recall_times_zlib(name):
    attack = ATTACKS[name](n=7)
    signals = fake_signals(attack, SAMPLES)
    got = attack.score(SAMPLES, signals)
    scorer = rouge_scorer.RougeScorer(["rouge1"], tokenizer=SpaceTokenizer())
    want = []
    for s in SAMPLES:
        prefix, suffix = true_split(s.text)
        if not prefix or not suffix:
            want.append(np.nan)
            continue
        request = next(r for r in signals if r.prompt.split() == prefix)
        values = []
        for text in signals[request].texts:
            recall = scorer.score(" ".join(suffix), text)["rouge1"].recall
            if name == "samia_zlib":
                recall *= len(zlib.compress(" ".join(text.split()).encode("utf-8")))
            values.append(recall)
        want.append(np.mean(values))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert np.isnan(got[-2:]).all() and np.isfinite(got[:-2]).all()  # one word, no word: NaN, nothing else
    assert "no prompt" in attack.score_hint(got) and attack.score_hint(got[:-2]) is None
    for s, value in zip(SAMPLES, got, strict=True):
        assert attack.reference_score(s, signals) == pytest.approx(value, rel=1e-12, nan_ok=True)


def test_samia_asks_for_the_papers_samples_of_each_texts_first_half():
    attack = ATTACKS["samia"]()
    requests = attack.requests(SAMPLES)
    assert len(requests) == 5  # the one-word and empty texts ask for nothing
    prompts = [r.prompt for r in requests]
    assert prompts[0] == "It was the best of times, it was the worst of"  # 11 of 22 words
    assert prompts[1] == "Call me Ishmael.  Some years ago -- never mind"  # its own spacing kept
    assert prompts[4] == "Hello"
    assert {(r.n, r.temperature, r.top_k, r.top_p, r.max_new_tokens, r.seed) for r in requests} == {
        (10, 1.0, 50, 1.0, 1024, 0)
    }  # nlp-titech/samia: 10 samples, do_sample, temperature 1, top_k 50, top_p 1, max_length 1024
    assert ATTACKS["samia_zlib"]().requests(SAMPLES) == requests  # the two share their samples


def test_samia_zlib_weights_each_sample_by_its_own_compressed_length():
    sample = Sample("s", "alpha beta gamma delta", 1)
    attack = ATTACKS["samia_zlib"](n=2)
    (request,) = attack.requests([sample])
    assert request.prompt == "alpha beta"
    long_miss = "gamma " + " ".join(f"w{i}" for i in range(40))
    signals = Signals({request: Generation(("gamma delta", long_miss), ((1,), (2,)))})
    zlen = [len(zlib.compress(t.encode())) for t in ("gamma delta", long_miss)]
    assert attack.score([sample], signals)[0] == pytest.approx((1.0 * zlen[0] + 0.5 * zlen[1]) / 2)
    assert ATTACKS["samia"](n=2).score([sample], signals)[0] == pytest.approx(0.75)


def plain_levenshtein(a, b) -> int:
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


def cdd_signals(attack, samples, seed: int = 0) -> Signals:
    """Greedy outputs of 30-50 token ids and samples 0-6 edits away from them (some longer, some empty)."""
    rng = random.Random(seed)
    entries = {}
    for request in attack.requests(samples):
        if request.greedy:
            ids = (tuple(rng.randrange(9) for _ in range(rng.randint(30, 50))),)
            entries[request] = Generation(("g",), ids)
    for request in attack.requests(samples):
        if not request.greedy:
            greedy = list(entries[attack.greedy_request(request.prompt)].token_ids[0])
            out = []
            for _ in range(request.n):
                ids = list(greedy)
                for _ in range(rng.randint(0, 6)):
                    op = rng.randrange(3)
                    at = rng.randrange(len(ids) + 1)
                    if op == 0:
                        ids.insert(at, rng.randrange(9))
                    elif ids and op == 1:
                        del ids[min(at, len(ids) - 1)]
                    elif ids:
                        ids[min(at, len(ids) - 1)] = rng.randrange(9)
                out.append(tuple(ids) if rng.random() > 0.05 else ())
            entries[request] = Generation(tuple("s" if ids else "" for ids in out), tuple(out))
    return Signals(entries)


def test_cdd_equals_the_share_of_samples_within_alpha_times_the_longest_output():
    attack = ATTACKS["cdd"](n=12)
    signals = cdd_signals(attack, SAMPLES)
    got = attack.score(SAMPLES, signals)
    want = []
    for s in SAMPLES:
        prefix, suffix = true_split(s.text)
        if not prefix or not suffix:
            want.append(np.nan)
            continue
        greedy = next(v for r, v in signals.items() if r.greedy and r.prompt.split() == prefix).token_ids[0]
        sampled = next(v for r, v in signals.items() if not r.greedy and r.prompt.split() == prefix).token_ids
        longest = max(len(x) for x in [greedy, *sampled])
        want.append(np.mean([plain_levenshtein(greedy, x) <= 0.05 * longest for x in sampled]))
    np.testing.assert_allclose(got, want, rtol=0, atol=0)
    assert 0 < np.nanmin(got) < np.nanmax(got) < 1  # the edits straddle the alpha * l threshold
    for s, value in zip(SAMPLES, got, strict=True):
        assert attack.reference_score(s, signals) == pytest.approx(value, nan_ok=True)


def test_cdd_hand_checked_and_all_empty_outputs_are_fully_peaked():
    sample = Sample("s", "one two three four", 1)
    attack = ATTACKS["cdd"](n=4, alpha=0.1)
    greedy_request, sampled_request = attack.requests([sample])
    greedy = tuple(range(20))
    sampled = (greedy, greedy[:-2], (*greedy, 7, 8, 9), ())  # distances 0, 2, 3, 20; longest 23 -> 2.3
    signals = Signals(
        {greedy_request: Generation(("g",), (greedy,)), sampled_request: Generation(("a", "b", "c", ""), sampled)}
    )
    assert attack.score([sample], signals)[0] == 0.5
    empty = Signals({greedy_request: Generation(("",), ((),)), sampled_request: Generation(("",) * 4, ((),) * 4)})
    assert attack.score([sample], empty)[0] == 1.0  # l = 0: every distance 0 <= 0, as the reference counts


def test_cdd_requests_and_orientation_on_peaked_and_spread_outputs():
    attack = ATTACKS["cdd"]()
    greedy, sampled = attack.requests(SAMPLES[:1])
    assert greedy == GenerationRequest(greedy.prompt, n=1, temperature=0.0, max_new_tokens=100)
    assert (sampled.n, sampled.temperature, sampled.top_k, sampled.top_p, sampled.max_new_tokens) == (
        50,
        0.8,
        0,
        1.0,
        100,
    )  # CDD-TED4LLMs: 50 samples at temperature 0.8, top_p 1, compared over their first 100 tokens
    attack = ATTACKS["cdd"](n=20)
    rng = random.Random(1)
    samples = [Sample(f"s{i}", f"w{i} " + " ".join(f"x{j}" for j in range(9)), i % 2) for i in range(40)]
    entries = {}
    for s in samples:
        g_request, s_request = attack.requests([s])
        base = tuple(rng.randrange(50) for _ in range(30))
        entries[g_request] = Generation(("",), (base,))
        if s.label:  # memorised: most samples repeat the greedy output, the rest lose a few tokens
            outs = [base if rng.random() < 0.7 else base[: -rng.randint(1, 8)] for _ in range(20)]
        else:
            outs = [tuple(rng.randrange(50) for _ in range(30)) for _ in range(20)]
        entries[s_request] = Generation(("",) * 20, tuple(outs))
    scores = attack.score(samples, Signals(entries))
    assert auroc(np.array([s.label for s in samples]), scores) == 1.0


def test_continuation_budget_is_capped_at_half_the_context_and_said_so():
    attack = ATTACKS["samia"]()
    attack.observe({None: ModelFacts(max_length=1024, tokenizer_fingerprint="t")})
    assert {r.max_new_tokens for r in attack.requests(SAMPLES)} == {512}
    (note,) = attack.notes()
    assert "512 new tokens" in note and "1024-token context" in note
    attack.observe({None: ModelFacts(max_length=4096, tokenizer_fingerprint="t")})
    assert {r.max_new_tokens for r in attack.requests(SAMPLES)} == {1024} and attack.notes() == []
    fresh = ATTACKS["cdd"]()  # not told any context: the budget as given
    assert {r.max_new_tokens for r in fresh.requests(SAMPLES)} == {100} and fresh.notes() == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("samia[temperature=0]", "temperature must be positive"),
        ("samia[n=0]", "n must be an integer of at least 1"),
        ("samia[top_p=0]", "top_p must be in"),
        ("samia_zlib[prefix_ratio=1]", "prefix_ratio must be in"),
        ("cdd[alpha=-0.1]", "alpha must be >= 0"),
        ("cdd[max_new_tokens=0]", "max_new_tokens must be an integer"),
    ],
)
def test_bad_parameters_fail_when_the_plan_is_built(spec, message):
    with pytest.raises(MiakitError, match=message):
        build_attacks(spec)


def test_column_names_carry_non_default_parameters():
    (attack,) = build_attacks("samia[n=4,temperature=0.7]")
    assert attack.column_name() == "samia[n=4,temperature=0.7]"
    assert ATTACKS["cdd"]().column_name() == "cdd"


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["samia", "samia_zlib", "verbatim_match", "verbatim_rouge_l"])
def test_members_score_higher_on_the_trained_world_beyond_the_permutation_null(name, attack_world, one_thread):
    """What check_attack's orientation check asks, at the world's parameters (the same stored generations)."""
    cls = ATTACKS[name]
    attack = cls(**cls.tiny_world_params)
    samples = attack_world.samples
    scores = attack.score(samples, collect_signals(attack_world.engine(), [attack], samples))
    labels = np.array([s.label for s in samples])
    assert np.isfinite(scores).all()
    assert auroc(labels, scores) > permutation_threshold(labels, scores, 0.01, 2000) > 0.5


def test_cdd_without_token_ids_is_nan_with_a_hint_or_compares_words():
    """A server that returns text only gives no token ids: no false peak of 1, and unit=words still scores."""
    sample = Sample("s", "one two three four", 1)
    attack = ATTACKS["cdd"](n=3)
    greedy_request, sampled_request = attack.requests([sample])
    texts = ("three four five", "three four six", "seven")
    signals = Signals(
        {
            greedy_request: Generation(("three four five",), ((),)),
            sampled_request: Generation(texts, ((),) * 3),
        }
    )
    scores = attack.score([sample], signals)
    assert np.isnan(scores[0]) and np.isnan(attack.reference_score(sample, signals))
    assert "cdd[unit=words]" in attack.score_hint(scores)
    words_attack = ATTACKS["cdd"](n=3, unit="words", alpha=0.34)  # l = 3 words: distances <= 1.02 count
    assert words_attack.requests([sample]) == [greedy_request, sampled_request]  # the same generations
    assert words_attack.score([sample], signals)[0] == pytest.approx(2 / 3)  # distances 0, 1, 3
    assert words_attack.reference_score(sample, signals) == pytest.approx(2 / 3)
    assert words_attack.score_hint(scores) is None
    with pytest.raises(MiakitError, match="unit must be one of tokens, words"):
        build_attacks("cdd[unit=chars]")
