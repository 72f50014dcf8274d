import numpy as np
import pytest
import torch

from lm_helpers import make_model, synthetic_texts
from miakit.errors import MiakitError
from miakit.signals.token_stats import TokenStats
from miakit.targets.hf_causal import HFCausalLM
from miakit.targets.logit_stats import STAT_FIELDS
from reference_math import reference_token_stats


@pytest.fixture(scope="module")
def target(tiny_model, tiny_tokenizer):
    return HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="tiny")


def test_batched_statistics_match_a_plain_forward_pass_per_text(target, tiny_model):
    texts = synthetic_texts(6, seed=3, max_words=12)
    batch = [(target.encode(t), 1) for t in texts]
    assert len({len(ids) for ids, _ in batch}) > 1  # different lengths: padding is exercised
    outputs = target.token_stats(batch)
    for (ids, _), out in zip(batch, outputs, strict=True):
        want = reference_token_stats(tiny_model, ids)
        assert out["token_ids"].tolist() == want["token_ids"].tolist()
        for name in STAT_FIELDS:
            np.testing.assert_allclose(out[name], want[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_first_scored_position_is_honoured(target, tiny_model):
    ids = target.encode(synthetic_texts(1, seed=4, max_words=15)[0])
    (out,) = target.token_stats([(ids, 5)])
    want = reference_token_stats(tiny_model, ids, first=5)
    np.testing.assert_allclose(out["logprob"], want["logprob"], rtol=1e-4, atol=1e-5)
    assert len(out["logprob"]) == len(ids) - 5


def test_hidden_state_head_path_equals_full_logits_path(tiny_model, tiny_tokenizer):
    texts = synthetic_texts(4, seed=5, max_words=12)
    fast = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    slow = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    batch = [(fast.encode(t), 1) for t in texts]
    a = fast.token_stats(batch)
    assert fast._head_mode == "hidden"
    slow._head_mode = "logits"
    b = slow.token_stats(batch)
    for x, y in zip(a, b, strict=True):
        for name in STAT_FIELDS:
            np.testing.assert_allclose(x[name], y[name], rtol=1e-5, atol=1e-5)


def test_softcapped_head_is_detected_and_falls_back_to_model_logits(tiny_model, tiny_tokenizer):
    class Softcapped(torch.nn.Module):
        """A wrapper whose logits differ from base_model + output head (like Gemma-2 soft-capping)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.config = inner.config

        @property
        def base_model(self):
            return self.inner.base_model

        def get_output_embeddings(self):
            return self.inner.get_output_embeddings()

        def forward(self, input_ids, attention_mask=None, use_cache=None):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            out.logits = 2.0 * torch.tanh(out.logits / 2.0)
            return out

    wrapped = Softcapped(tiny_model)
    target = HFCausalLM(tiny_tokenizer, name="capped", fingerprint="x", config=tiny_model.config, model=wrapped)
    ids = target.encode(synthetic_texts(1, seed=6, max_words=12)[0])
    (out,) = target.token_stats([(ids, 1)])
    assert target._head_mode == "logits"
    want = reference_token_stats(wrapped, ids)
    np.testing.assert_allclose(out["logprob"], want["logprob"], rtol=1e-4, atol=1e-5)


def test_fingerprints_follow_weights_and_tokenizer(tiny_tokenizer):
    a = HFCausalLM.from_model(make_model(len(tiny_tokenizer), seed=1), tiny_tokenizer)
    b = HFCausalLM.from_model(make_model(len(tiny_tokenizer), seed=1), tiny_tokenizer)
    c = HFCausalLM.from_model(make_model(len(tiny_tokenizer), seed=2), tiny_tokenizer)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.tokenizer_fingerprint == c.tokenizer_fingerprint


def test_from_pretrained_directory_loads_lazily_and_matches_memory(
    tiny_model_dir, tiny_model, tiny_tokenizer, cache_dir
):
    target = HFCausalLM.from_pretrained(str(tiny_model_dir))
    assert not target.loaded
    assert target.fingerprint.startswith("sha256:") and target.dtype == "float32"
    assert HFCausalLM.from_pretrained(str(tiny_model_dir)).fingerprint == target.fingerprint
    ids = target.encode("The king and the queen.")
    (out,) = target.token_stats([(ids, 1)])
    assert target.loaded
    want = reference_token_stats(tiny_model, ids)
    np.testing.assert_allclose(out["logprob"], want["logprob"], rtol=1e-5, atol=1e-5)


def test_missing_model_is_a_user_error(tmp_path, cache_dir):
    with pytest.raises(MiakitError, match=r"no model at .*nothing-here: the folder does not exist"):
        HFCausalLM.from_pretrained(str(tmp_path / "nothing-here"))


def test_encode_pair_splits_at_the_boundary(target):
    ctx, cont = target.encode_pair("The king said ", "the river")
    assert target.encode("The king said the river") == ctx + cont
    assert cont  # trailing space of the context travels with the continuation


def test_token_stats_serialisation_round_trips(target):
    (out,) = target.token_stats([(target.encode("The queen of the river."), 1)])
    stats = TokenStats.from_arrays(out)
    back = TokenStats.from_bytes(stats.to_bytes())
    for name in [*STAT_FIELDS, "token_ids"]:
        np.testing.assert_array_equal(getattr(back, name), getattr(stats, name))
