"""Seeded generation on the local target: identical across batch sizes and reruns, greedy equals transformers."""

import numpy as np
import pytest
import torch

from miakit.signals.generation import Generation
from miakit.signals.requests import GenerationRequest
from miakit.targets.hf_causal import HFCausalLM
from miakit.targets.hf_generate import filtered_logits


@pytest.fixture(scope="module")
def target(trained_scenario):
    return HFCausalLM.from_pretrained(str(trained_scenario["target"]))


def _requests(trained_scenario, n=3):
    prompts = [" ".join(t.split()[:6]) for t in trained_scenario["members"][:4] + trained_scenario["nonmembers"][:3]]
    sampled = [GenerationRequest(p, n=n, temperature=1.0, top_k=50, max_new_tokens=12, seed=5) for p in prompts]
    greedy = [GenerationRequest(p, max_new_tokens=9 + i) for i, p in enumerate(prompts)]
    return sampled + greedy


def test_generation_is_identical_across_batch_sizes_and_reruns(target, trained_scenario):
    requests = _requests(trained_scenario)
    whole = target.generate(requests)
    one_by_one = [target.generate([r])[0] for r in requests]
    reversed_pairs = []
    for start in range(0, len(requests), 2):
        reversed_pairs += target.generate(requests[start : start + 2][::-1])[::-1]
    for other in (one_by_one, reversed_pairs, target.generate(requests)):
        assert [g.token_ids for g in other] == [g.token_ids for g in whole]
        assert [g.texts for g in other] == [g.texts for g in whole]
        for a, b in zip(other, whole, strict=True):  # padding changes float rounding, nothing more
            np.testing.assert_allclose(
                np.concatenate(a.logprob_arrays()), np.concatenate(b.logprob_arrays()), atol=1e-4
            )
    sampled = whole[0]
    assert len(sampled) == 3 and len(set(sampled.texts)) > 1  # three draws, not one repeated
    other_seed = target.generate([GenerationRequest(requests[0].prompt, 3, 1.0, 50, 1.0, 12, seed=6)])[0]
    assert other_seed.texts != sampled.texts


def test_the_local_model_is_a_scoring_and_generating_target(target):
    from miakit.targets.protocol import GeneratingTarget, TokenScoringTarget

    assert isinstance(target, TokenScoringTarget) and isinstance(target, GeneratingTarget)
    assert not isinstance(object(), GeneratingTarget)


def test_greedy_equals_transformers_generate(target, trained_scenario):
    prompt = " ".join(trained_scenario["members"][0].split()[:5])
    mine = target.generate([GenerationRequest(prompt, max_new_tokens=15)])[0]
    ids = torch.tensor([target.encode(prompt)])
    ref = target.model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=15, do_sample=False,
        pad_token_id=target.tokenizer.eos_token_id,
    )[0, ids.shape[1] :].tolist()  # fmt: skip
    eos = target.tokenizer.eos_token_id
    ref = ref[: ref.index(eos)] if eos in ref else ref
    assert list(mine.token_ids[0]) == ref
    assert mine.texts[0] == target.tokenizer.decode(ref, skip_special_tokens=True)
    # each log-prob is the model's unmodified log-prob of that token after the prompt and the tokens before it
    full = torch.tensor([[*target.encode(prompt), *ref]])
    logp = torch.log_softmax(target.model(full).logits[0].float(), -1)
    start = ids.shape[1]
    expected = [float(logp[start - 1 + t, tok]) for t, tok in enumerate(ref)]
    np.testing.assert_allclose(mine.logprobs[0], expected, atol=1e-4)


def test_filtering_keeps_the_top_k_and_the_nucleus():
    logp = torch.log_softmax(torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0]), -1)
    kept = lambda x: torch.isfinite(x).nonzero().flatten().tolist()  # noqa: E731
    assert kept(filtered_logits(logp, 1.0, 2, 1.0)) == [0, 1]
    probs = torch.softmax(logp, -1)  # 0.636, 0.234, 0.086, ...
    assert kept(filtered_logits(logp, 1.0, 0, float(probs[0]) - 0.01)) == [0]
    assert kept(filtered_logits(logp, 1.0, 0, float(probs[0]) + 0.01)) == [0, 1]
    assert kept(filtered_logits(logp, 1.0, 0, float(probs[:2].sum()) + 0.01)) == [0, 1, 2]
    np.testing.assert_allclose(filtered_logits(logp, 2.0, 0, 1.0), logp / 2)


def test_generation_record_round_trips_and_checks_its_shape():
    g = Generation(("a b", ""), ((1, 2), ()), ((-0.5, -1.25), ()))
    assert Generation.from_bytes(g.to_bytes()) == g
    assert Generation.from_bytes(Generation(("x",), ((3,),)).to_bytes()).logprobs is None
    with pytest.raises(ValueError):
        Generation(("a",), ((1,),), ((-1.0, -2.0),))


def test_greedy_requests_share_a_key_whatever_their_seed():
    assert GenerationRequest("p", seed=1).key() == GenerationRequest("p", seed=2).key()
    assert GenerationRequest("p", temperature=1, seed=1).key() != GenerationRequest("p", temperature=1, seed=2).key()
    with pytest.raises(ValueError):
        GenerationRequest("p", top_p=0)
