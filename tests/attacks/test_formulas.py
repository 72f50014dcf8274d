"""Every attack against an independent float64 computation from plain torch on a tiny model."""

import math
import zlib

import numpy as np
import pytest

from lm_helpers import make_model, synthetic_texts
from miakit.attacks import ATTACKS, build_attacks
from miakit.data import Sample
from miakit.signals.engine import Engine
from miakit.targets.hf_causal import HFCausalLM
from reference_math import reference_token_stats, reference_topk_stats

TEXTS = synthetic_texts(8, seed=21, min_words=6, max_words=14)


@pytest.fixture(scope="module")
def setup(tiny_model, tiny_tokenizer, tmp_path_factory):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="tiny")
    ref_model = make_model(len(tiny_tokenizer), seed=7)
    ref = HFCausalLM.from_model(ref_model, tiny_tokenizer, name="ref")
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    corpus.write_text("\n".join(synthetic_texts(50, seed=99)))
    samples = [Sample(id=str(i), text=t, label=i % 2) for i, t in enumerate(TEXTS)]
    return target, ref, ref_model, corpus, samples


def run(attack, setup):
    target, ref, _, corpus, samples = setup
    engine = Engine({None: target, "ref": ref}, None, default_corpus=corpus, progress=False)
    return attack.score(samples, engine.run(attack.requests(samples)))


def ref_stats(model, tokenizer, text):
    return reference_token_stats(model, tokenizer(text)["input_ids"])


def lowest(values, k):
    m = max(1, math.floor(k * len(values)))
    return np.sort(values)[:m]


@pytest.mark.parametrize("k", [0.1, 0.2, 0.5])
def test_min_k_and_max_k(setup, tiny_model, tiny_tokenizer, k):
    got_min = run(build_attacks(f"min_k[k={k}]")[0], setup)
    got_max = run(build_attacks(f"max_k[k={k}]")[0], setup)
    for i, t in enumerate(TEXTS):
        lp = ref_stats(tiny_model, tiny_tokenizer, t)["logprob"]
        assert got_min[i] == pytest.approx(lowest(lp, k).mean(), abs=1e-5)
        assert got_max[i] == pytest.approx(-lowest(-lp, k).mean(), abs=1e-5)


def test_loss_zlib_lowercase(setup, tiny_model, tiny_tokenizer):
    loss = run(ATTACKS["loss"](), setup)
    zl = run(ATTACKS["zlib"](), setup)
    low = run(ATTACKS["lowercase"](), setup)
    for i, t in enumerate(TEXTS):
        ll = ref_stats(tiny_model, tiny_tokenizer, t)["logprob"].mean()
        ll_lower = ref_stats(tiny_model, tiny_tokenizer, t.lower())["logprob"].mean()
        assert loss[i] == pytest.approx(ll, abs=1e-5)
        assert zl[i] == pytest.approx(ll / len(zlib.compress(t.encode("utf-8"))), abs=1e-7)
        assert low[i] == pytest.approx(ll_lower / ll, rel=1e-5)


@pytest.mark.parametrize("k", [0.2, 0.6])
def test_min_k_plus_plus(setup, tiny_model, tiny_tokenizer, k):
    got = run(build_attacks(f"min_k_pp[k={k}]")[0], setup)
    for i, t in enumerate(TEXTS):
        s = ref_stats(tiny_model, tiny_tokenizer, t)
        z = (s["logprob"] - s["mu"]) / s["sigma"]
        assert got[i] == pytest.approx(lowest(z, k).mean(), abs=1e-4)


@pytest.mark.parametrize(("k", "tau"), [(0.4, 2.0), (0.5, 5.7), (1.0, 100.0)])
def test_surp(setup, tiny_model, tiny_tokenizer, k, tau):
    got = run(build_attacks(f"surp[k={k},tau={tau}]")[0], setup)
    for i, t in enumerate(TEXTS):
        s = ref_stats(tiny_model, tiny_tokenizer, t)
        m = max(1, math.floor(k * len(s["logprob"])))
        chosen = [j for j in np.argsort(s["logprob"])[:m] if s["entropy"][j] < tau]
        want = s["logprob"][chosen].mean() if chosen else -np.inf
        assert got[i] == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.5, 1, 2, "inf"])
@pytest.mark.parametrize("k", [0, 0.1, 1.0])
def test_max_renyi(setup, tiny_model, tiny_tokenizer, alpha, k):
    got = run(build_attacks(f"max_renyi[alpha={alpha},k={k}]")[0], setup)
    key = {0.5: "renyi_05", 1: "entropy", 2: "renyi_2", "inf": "renyi_inf"}[alpha]
    for i, t in enumerate(TEXTS):
        h = ref_stats(tiny_model, tiny_tokenizer, t)[key]
        m = max(1, math.floor(k * len(h)))
        assert got[i] == pytest.approx(-np.sort(h)[::-1][:m].mean(), abs=1e-5)


@pytest.mark.parametrize("topk", [1, 5, 20])
def test_topk_approximations(setup, tiny_model, tiny_tokenizer, topk):
    """min_k_pp, surp and max_renyi with approx=topk read the renormalised top-k distribution."""
    specs = (
        f"min_k_pp[approx=topk,topk={topk}]",
        f"surp[approx=topk,topk={topk},tau=1.5]",
        f"max_renyi[approx=topk,topk={topk},alpha=2,k=0.3]",
    )
    got = [run(build_attacks(spec)[0], setup) for spec in specs]
    for i, t in enumerate(TEXTS):
        s = reference_topk_stats(tiny_model, tiny_tokenizer(t)["input_ids"], topk)
        z = (s["logprob"] - s["mu"]) / s["sigma"]
        assert got[0][i] == pytest.approx(lowest(z, 0.2).mean(), abs=1e-4)
        m = max(1, math.floor(0.4 * len(s["logprob"])))
        chosen = [j for j in np.argsort(s["logprob"])[:m] if s["entropy"][j] < 1.5]
        assert got[1][i] == pytest.approx(s["logprob"][chosen].mean() if chosen else -np.inf, abs=1e-5)
        m = max(1, math.floor(0.3 * len(s["renyi_2"])))
        assert got[2][i] == pytest.approx(-np.sort(s["renyi_2"])[::-1][:m].mean(), abs=1e-5)


@pytest.mark.parametrize("a", [0.01, 1.0])
def test_dc_pdd(setup, tiny_model, tiny_tokenizer, a):
    _, _, _, corpus, _ = setup
    got = run(build_attacks(f"dc_pdd[a={a}]")[0], setup)
    vocab = max(len(tiny_tokenizer), tiny_model.config.vocab_size)
    counts = np.zeros(vocab)
    for line in corpus.read_text().splitlines():
        for tok in tiny_tokenizer(line, add_special_tokens=False)["input_ids"]:
            counts[tok] += 1
    freq = (counts + 1) / (counts.sum() + vocab)
    for i, t in enumerate(TEXTS):
        s = ref_stats(tiny_model, tiny_tokenizer, t)
        seen, values = set(), []
        for tok, lp in zip(s["token_ids"], s["logprob"], strict=True):
            if tok in seen:
                continue
            seen.add(tok)
            values.append(min(a, math.exp(lp) * math.log(1 / freq[tok])))
        assert got[i] == pytest.approx(np.mean(values), rel=1e-4)


def test_reference(setup, tiny_model, tiny_tokenizer):
    _, _, ref_model, _, _ = setup
    got = run(ATTACKS["reference"](model="ref"), setup)
    for i, t in enumerate(TEXTS):
        want = ref_stats(tiny_model, tiny_tokenizer, t)["logprob"].mean()
        want -= ref_stats(ref_model, tiny_tokenizer, t)["logprob"].mean()
        assert got[i] == pytest.approx(want, abs=1e-5)
