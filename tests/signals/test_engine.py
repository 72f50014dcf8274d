import numpy as np
import pytest

from lm_helpers import synthetic_texts
from miakit.errors import MiakitError
from miakit.signals import TokenCountsRequest, TokenStatsRequest
from miakit.signals.engine import Engine, rolling_windows
from miakit.signals.store import Store
from miakit.targets.hf_causal import HFCausalLM
from reference_math import reference_token_stats


@pytest.fixture
def target(tiny_model, tiny_tokenizer):
    return HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="tiny")


def test_long_texts_are_scored_in_rolling_windows_and_reassembled(target, tiny_model):
    text = " ".join(synthetic_texts(12, seed=8))
    ids = target.encode(text)
    assert len(ids) > 3 * target.max_length
    engine = Engine({None: target}, None, batch_size=3, stride=16, progress=False)
    stats = engine.run([TokenStatsRequest(text)])[TokenStatsRequest(text)]
    assert stats.token_ids.tolist() == ids[1:]
    expected = []
    for start, end, rel_first in rolling_windows(len(ids), 1, target.max_length, 16):
        expected.append(reference_token_stats(tiny_model, ids[start:end], first=rel_first)["logprob"])
    np.testing.assert_allclose(stats.logprob, np.concatenate(expected), rtol=1e-4, atol=1e-5)
    assert engine.counts.forward_passes_computed == len(rolling_windows(len(ids), 1, target.max_length, 16))


def test_store_hits_make_no_forward_pass_and_equal_fresh_values(target, tmp_path):
    texts = synthetic_texts(9, seed=9, max_words=12)
    store = Store(tmp_path)
    first = Engine({None: target}, store, batch_size=4, progress=False)
    a = first.run([TokenStatsRequest(t) for t in texts])
    assert first.counts.forward_passes_computed == 9 and first.counts.forward_passes_cached == 0
    second = Engine({None: target}, Store(tmp_path), batch_size=2, progress=False)
    b = second.run([TokenStatsRequest(t) for t in texts])
    assert second.counts.forward_passes_computed == 0 and second.counts.tokens_computed == 0
    assert second.counts.forward_passes_cached == 9
    assert second.counts.tokens_cached == first.counts.tokens_computed
    for t in texts:
        np.testing.assert_array_equal(a[TokenStatsRequest(t)].logprob, b[TokenStatsRequest(t)].logprob)


def test_duplicate_requests_are_computed_once(target):
    engine = Engine({None: target}, None, progress=False)
    engine.run([TokenStatsRequest("The king.")] * 5 + [TokenStatsRequest("The queen.")])
    assert engine.counts.forward_passes_computed == 2


def test_batch_size_does_not_change_statistics(target):
    texts = synthetic_texts(7, seed=10, max_words=14)
    one = Engine({None: target}, None, batch_size=1, progress=False).run([TokenStatsRequest(t) for t in texts])
    many = Engine({None: target}, None, batch_size=7, progress=False).run([TokenStatsRequest(t) for t in texts])
    for t in texts:
        np.testing.assert_allclose(one[TokenStatsRequest(t)].logprob, many[TokenStatsRequest(t)].logprob, atol=1e-5)


def test_prepend_bos_scores_every_token(target, tiny_model):
    text = "The river and the stone."
    ids = target.encode(text)
    engine = Engine({None: target}, None, prepend_bos=True, progress=False)
    stats = engine.run([TokenStatsRequest(text)])[TokenStatsRequest(text)]
    assert stats.token_ids.tolist() == ids
    want = reference_token_stats(tiny_model, [target.bos_id(), *ids])
    np.testing.assert_allclose(stats.logprob, want["logprob"], rtol=1e-4, atol=1e-5)


def test_context_is_not_scored(target, tiny_model):
    request = TokenStatsRequest("the river.", context="The king said ")
    stats = Engine({None: target}, None, progress=False).run([request])[request]
    ctx, cont = target.encode_pair(request.context, request.text)
    assert stats.token_ids.tolist() == cont
    want = reference_token_stats(tiny_model, ctx + cont, first=len(ctx))
    np.testing.assert_allclose(stats.logprob, want["logprob"], rtol=1e-4, atol=1e-5)


def test_single_token_text_has_no_scored_tokens(target):
    stats = Engine({None: target}, None, progress=False).run([TokenStatsRequest("a")])[TokenStatsRequest("a")]
    assert len(stats) == 0


def test_token_counts_over_a_corpus_are_cached(target, tmp_path, cache_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the king\nthe queen and the king\n")
    request = TokenCountsRequest(str(corpus))
    engine = Engine({None: target}, Store(tmp_path / "s"), progress=False)
    counts = engine.run([request])[request]
    expected = np.zeros(target.vocab_size, dtype=np.int64)
    for line in ("the king", "the queen and the king"):
        for i in target.encode_plain(line):
            expected[i] += 1
    np.testing.assert_array_equal(counts, expected)
    again = Engine({None: target}, Store(tmp_path / "s"), progress=False).run([request])[request]
    np.testing.assert_array_equal(again, expected)


def test_unknown_reference_model_is_a_user_error(target):
    with pytest.raises(MiakitError, match="Unknown model"):
        Engine({None: target}, None, progress=False).run([TokenStatsRequest("x y", model="missing")])


def test_signals_is_a_read_only_mapping(target):
    requests = [TokenStatsRequest("The king."), TokenStatsRequest("The queen.")]
    signals = Engine({None: target}, None, progress=False).run(requests)
    assert set(signals.keys()) == set(requests) and requests[0] in signals and len(signals) == 2
    assert [len(v) for v in signals.values()] == [len(signals[r]) for r in signals]
    assert {r: v for r, v in signals.items()} == {r: signals[r] for r in requests}
    merged = {**signals}
    assert merged.keys() == set(requests) and merged[requests[1]] is signals[requests[1]]
    assert dict(signals) == merged and signals.entries == merged
