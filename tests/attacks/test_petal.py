"""PETAL (label-only): greedy next tokens, sentence embeddings, and the score against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import miakit
from lm_helpers import make_model, make_tokenizer, synthetic_texts
from miakit.attacks.petal import Petal
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.run.runner import collect_signals
from miakit.signals import EmbeddingRequest, NextTokens, NextTokensRequest, TokenStatsRequest
from miakit.signals.engine import CODECS, Engine
from miakit.signals.store import Store
from miakit.targets.embedder import SentenceEmbedder
from miakit.targets.hf_causal import HFCausalLM

TEXTS = synthetic_texts(7, seed=5, min_words=3, max_words=20)


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory):
    """A tiny sentence-transformer built here: a random 2-layer BertModel with a word-level tokenizer, mean
    pooling and L2 normalisation, saved locally (no download)."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel

    from lm_helpers import make_mlm_tokenizer

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models

    root = tmp_path_factory.mktemp("embedder")
    tokenizer = make_mlm_tokenizer(synthetic_texts(200, seed=9))
    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    BertModel(config, add_pooling_layer=False).eval().save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    transformer = models.Transformer(str(root / "bert"))
    pooling = models.Pooling(config.hidden_size, pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(root / "st"))
    return root / "st"


@pytest.fixture(scope="module")
def surrogate_parts():
    """A surrogate with its own tokenizer and weights (PETAL's surrogate need not share the target's)."""
    tokenizer = make_tokenizer(synthetic_texts(300, seed=77), vocab_size=280)
    return make_model(len(tokenizer), seed=11), tokenizer


def greedy_by_generate(model, ids):
    """The reference's way: one generate(max_new_tokens=1, do_sample=False) call per prefix."""
    out = []
    for i in range(1, len(ids)):
        prefix = torch.tensor([ids[:i]])
        generated = model.generate(
            input_ids=prefix, attention_mask=torch.ones_like(prefix), do_sample=False, max_new_tokens=1,
            pad_token_id=0,
        )  # fmt: skip
        out.append(int(generated[0, -1]))
    return out


def test_next_tokens_equal_one_token_greedy_generation_from_every_prefix(tiny_model, tiny_tokenizer):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    engine = Engine({None: target}, None, progress=False, batch_size=3)
    word = next(w for w in ("the", " the", "a", "of", "and") if len(tiny_tokenizer(w)["input_ids"]) == 1)
    texts = [*TEXTS, word, ""]
    signals = engine.run([NextTokensRequest(t) for t in texts])
    for text in TEXTS:
        got = signals[NextTokensRequest(text)]
        ids = tiny_tokenizer(text)["input_ids"]
        assert list(got.token_ids) == ids and len(got) == len(ids) - 1 >= 1
        assert list(got.predicted) == greedy_by_generate(tiny_model, ids)
        assert list(got.true_pieces) == [tiny_tokenizer.decode(t) for t in ids[1:]]
        assert list(got.predicted_pieces) == [tiny_tokenizer.decode(t) for t in got.predicted]
    assert len(signals[NextTokensRequest(word)]) == 0 and len(signals[NextTokensRequest("")]) == 0


def test_next_tokens_of_a_text_beyond_the_context_use_its_first_tokens(tiny_model, tiny_tokenizer):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer, max_length=8)
    text = TEXTS[2] + " " + TEXTS[3]
    got = Engine({None: target}, None, progress=False).run([NextTokensRequest(text)])[NextTokensRequest(text)]
    ids = tiny_tokenizer(text)["input_ids"][:8]
    assert list(got.token_ids) == ids and list(got.predicted) == greedy_by_generate(tiny_model, ids)


def test_next_tokens_and_embeddings_are_stored_and_read_back(tiny_model, tiny_tokenizer, embedder_dir, tmp_path):
    record = NextTokens((1, 2, 3), (4, 5), ("a", " b"), ("ü", ""))
    assert NextTokens.from_bytes(CODECS[NextTokensRequest.kind].encode(record)) == record
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    requests = [*(NextTokensRequest(t) for t in TEXTS), *(EmbeddingRequest(p, str(embedder_dir)) for p in ("a", " b"))]
    store = Store(tmp_path / "signals")
    first = Engine({None: target}, store, progress=False).run(requests)
    again = Engine({None: target}, store, progress=False)
    second = again.run(requests)
    assert again.kind_counts["next_tokens"].computed == 0 and again.kind_counts["next_tokens"].cached == len(TEXTS)
    assert again.kind_counts["embedding"].computed == 0 and again.kind_counts["embedding"].cached == 2
    for r in requests:
        if isinstance(r, EmbeddingRequest):
            assert second[r].dtype == np.float32 and np.array_equal(first[r], second[r])
        else:
            assert first[r] == second[r]


def test_embeddings_are_the_models_normalised_vectors(embedder_dir):
    from sentence_transformers import SentenceTransformer

    direct = SentenceTransformer(str(embedder_dir), device="cpu").encode(["the king", " of", "<|endoftext|>"])
    mine = SentenceEmbedder.from_pretrained(str(embedder_dir), device="cpu").embed(["the king", " of", "<|endoftext|>"])
    np.testing.assert_allclose(np.stack(mine), direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.stack(mine), axis=1), 1.0, rtol=1e-5)


def independent_petal(target_model, target_tok, surrogate_model, surrogate_tok, embedder_dir, text):
    """PETAL as the authors' artifact computes it: generate per prefix, embed each piece with the
    sentence-transformers model (normalised), dot_score, log (1e-16 floor), np.polyfit on the surrogate."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import dot_score

    st = SentenceTransformer(str(embedder_dir), device="cpu")

    def similarities(model, tok, ids):
        out = []
        for i, generated in enumerate(greedy_by_generate(model, ids), start=1):
            label = st.encode([tok.decode(ids[i])], normalize_embeddings=True)
            guess = st.encode(tok.decode(generated), normalize_embeddings=True)
            score = dot_score(label, guess)[0].item()
            out.append(math.log(score if score > 0 else 1e-16))
        return out

    s_ids = surrogate_tok(text)["input_ids"]
    with torch.no_grad():
        logp = surrogate_model(torch.tensor([s_ids])).logits.log_softmax(-1)[0]
    s_logprobs = [float(logp[i - 1, s_ids[i]]) for i in range(1, len(s_ids))]
    s_similarities = similarities(surrogate_model, surrogate_tok, s_ids)
    slope, intercept = np.polyfit(np.array(s_similarities), np.array(s_logprobs), 1)
    estimated = [slope * x + intercept for x in similarities(target_model, target_tok, target_tok(text)["input_ids"])]
    return float(np.mean(estimated))


def test_petal_score_equals_an_independent_computation(tiny_model, tiny_tokenizer, surrogate_parts, embedder_dir):
    s_model, s_tok = surrogate_parts
    targets = {None: HFCausalLM.from_model(tiny_model, tiny_tokenizer), "sur": HFCausalLM.from_model(s_model, s_tok)}
    engine = Engine(targets, None, progress=False, batch_size=2)
    attack = Petal(surrogate="sur", embedder=str(embedder_dir))
    samples = [Sample(str(i), t, i % 2) for i, t in enumerate(TEXTS)]
    signals = collect_signals(engine, [attack], samples)
    scores = attack.score(samples, signals)
    want = [independent_petal(tiny_model, tiny_tokenizer, s_model, s_tok, embedder_dir, t) for t in TEXTS]
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-5)
    reference = [attack.reference_score(s, signals) for s in samples]
    np.testing.assert_allclose(scores, reference, rtol=1e-7, atol=1e-12)
    # one embedding per distinct piece, and the scores are batch-invariant
    pieces = {r.text for r in signals if isinstance(r, EmbeddingRequest)}
    assert len(pieces) == sum(isinstance(r, EmbeddingRequest) for r in signals)
    alone = [attack.score([s], signals)[0] for s in samples]
    np.testing.assert_allclose(alone, scores, rtol=1e-12)


def test_unscorable_texts_are_nan_with_a_hint(tiny_model, tiny_tokenizer, embedder_dir):
    targets = {None: HFCausalLM.from_model(tiny_model, tiny_tokenizer)}
    targets["sur"] = targets[None]
    attack = Petal(surrogate="sur", embedder=str(embedder_dir))
    word = next(w for w in ("the", " the", "a", "of", "and") if len(tiny_tokenizer(w)["input_ids"]) == 1)
    samples = [Sample("one", word, 0), Sample("ok", TEXTS[0], 1)]
    signals = collect_signals(Engine(targets, None, progress=False), [attack], samples)
    scores = attack.score(samples, signals)
    assert np.isnan(scores[0]) and np.isfinite(scores[1])
    assert "fewer than two tokens" in attack.score_hint(scores)
    # all surrogate similarities equal (every piece embeds to the same vector): no line, NaN
    flat = {r: (np.ones(4, dtype=np.float32) / 2 if isinstance(r, EmbeddingRequest) else v) for r, v in signals.items()}
    assert np.isnan(attack.score(samples[1:], flat)[0]) and math.isnan(attack.reference_score(samples[1], flat))


def test_petal_needs_a_surrogate_and_reads_the_target_by_greedy_tokens_only():
    with pytest.raises(MiakitError, match="surrogate"):
        Petal().requests([Sample("a", "b c", 1)])
    with pytest.raises(MiakitError, match="floor"):
        Petal(surrogate="x", floor=0).check_params()
    # label-only: generated tokens, no log-probs; prompted with token ids (every prefix of the text)
    assert {c.value for c in Petal.requires} == {"generation", "token_ids"}
    requests = Petal(surrogate="s").requests([Sample("a", "b c", 1)])
    assert requests == [
        NextTokensRequest("b c"),
        NextTokensRequest("b c", model="s"),
        TokenStatsRequest("b c", model="s"),
    ]


def test_petal_end_to_end_through_audit_with_a_reference(
    tiny_model, tiny_tokenizer, tiny_model_dir, surrogate_parts, embedder_dir, tmp_path, cache_dir
):
    s_model, s_tok = surrogate_parts
    surrogate_dir = tmp_path / "surrogate"
    s_model.save_pretrained(surrogate_dir)
    s_tok.save_pretrained(surrogate_dir)
    samples = [Sample(str(i), t, i % 2) for i, t in enumerate(synthetic_texts(10, seed=8, min_words=4, max_words=12))]
    result = miakit.audit(
        str(tiny_model_dir),
        samples,
        reference=[str(surrogate_dir)],
        attacks=[f"petal[embedder={embedder_dir}]"],
        write=False,
        bootstrap=0,
        progress=False,
        device="cpu",
    )
    column = next(c for c in result.scores.columns if c.startswith("petal"))
    scores = result.scores.set_index("id")[column]
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    want = [independent_petal(target.model, tiny_tokenizer, s_model, s_tok, embedder_dir, s.text) for s in samples[:3]]
    np.testing.assert_allclose(scores.loc[["0", "1", "2"]].to_numpy(), want, rtol=1e-4, atol=1e-5)
