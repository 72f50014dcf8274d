"""The masked-LM neighbour generator, on a tiny BERT and word-level tokenizer built here (no downloads)."""

from __future__ import annotations

import pytest
import torch

from lm_helpers import make_mlm, make_mlm_tokenizer, synthetic_texts
from miakit.errors import MiakitError
from miakit.targets.hf_mlm import HFMaskedLM


@pytest.fixture(scope="module")
def mlm_tokenizer():
    return make_mlm_tokenizer(synthetic_texts(40, seed=11))


@pytest.fixture(scope="module")
def mlm_model(mlm_tokenizer):
    return make_mlm(len(mlm_tokenizer))


@pytest.fixture(scope="module")
def mlm(mlm_model, mlm_tokenizer):
    return HFMaskedLM.from_model(mlm_model, mlm_tokenizer, name="tiny-bert")


@pytest.fixture(scope="module")
def texts():
    return synthetic_texts(4, seed=12, min_words=6, max_words=14)


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory, mlm_model, mlm_tokenizer):
    path = tmp_path_factory.mktemp("tiny-mlm")
    mlm_model.save_pretrained(path)
    mlm_tokenizer.save_pretrained(path)
    return path


def test_each_neighbour_swaps_exactly_one_non_special_token(mlm, mlm_tokenizer, texts):
    special = set(mlm_tokenizer.all_special_ids)
    for text, row, neighbours in zip(texts, mlm.replacements(texts, 8), mlm.neighbours(texts, 8), strict=True):
        original = mlm_tokenizer(text)["input_ids"]
        assert len(row) == 8
        assert [r.text for r in row] == neighbours
        assert len(set(neighbours)) == 8 and text not in neighbours
        for r in row:
            ids = mlm_tokenizer(r.text)["input_ids"]
            assert len(ids) == len(original)
            diff = [i for i, (a, b) in enumerate(zip(ids, original, strict=True)) if a != b]
            assert diff == [r.position]
            assert original[r.position] == r.original_id and ids[r.position] == r.token_id
            assert r.original_id not in special and r.token_id not in special
        scores = [r.score for r in row]
        assert scores == sorted(scores, reverse=True)


def test_deterministic_for_a_seed_and_independent_of_batch_size(mlm, texts):
    first = mlm.neighbours(texts, 6, seed=3)
    assert mlm.neighbours(texts, 6, seed=3) == first
    assert mlm.neighbours(texts, 6, seed=3, batch_size=1) == first
    assert mlm.neighbours(texts, 6, seed=3, batch_size=32) == first
    assert mlm.neighbours(list(reversed(texts)), 6, seed=3) == list(reversed(first))  # per text, not per batch
    others = [mlm.neighbours(texts, 6, seed=s) for s in (4, 5, 6)]
    assert any(o != first for o in others)


def test_without_dropout_choices_match_plain_mlm_scores(mlm, mlm_model, mlm_tokenizer):
    """dropout=0: the candidates are the model's own top-(k+1) at each position, scored p(c) / (1 - p(orig))."""
    text = "The king and the queen rode to the village at night."
    ids = mlm_tokenizer(text)["input_ids"]
    special = set(mlm_tokenizer.all_special_ids)
    top_k, n = 3, 7
    with torch.no_grad():
        probs = torch.softmax(mlm_model(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
    want = []
    for i, token in enumerate(ids):
        if token in special:
            continue
        top = torch.topk(probs[i], top_k + 1).indices.tolist()
        for c in top:
            if c != token and c not in special:
                want.append((float(probs[i, c] / (1 - probs[i, token])), i, c))
    want.sort(key=lambda t: (-t[0], t[1], t[2]))
    (row,) = mlm.replacements([text], n, top_k=top_k, dropout=0.0)
    assert {(r.position, r.token_id) for r in row} == {(i, c) for _, i, c in want[:n]}
    for r, (score, _, _) in zip(row, want[:n], strict=True):
        assert r.score == pytest.approx(score, rel=1e-4)


def test_head_on_scored_positions_equals_full_logits(mlm_model, mlm_tokenizer, texts):
    fast = HFMaskedLM.from_model(mlm_model, mlm_tokenizer)
    slow = HFMaskedLM.from_model(mlm_model, mlm_tokenizer)
    a = fast.replacements(texts, 5)
    assert fast._head_mode == "gather"
    slow._head_mode = "logits"
    b = slow.replacements(texts, 5)
    assert [[(r.position, r.token_id) for r in row] for row in a] == [
        [(r.position, r.token_id) for r in row] for row in b
    ]
    for x, y in zip(a, b, strict=True):
        assert [r.score for r in x] == pytest.approx([r.score for r in y], rel=1e-5)


def test_long_text_scores_the_window_and_keeps_the_rest(mlm, mlm_tokenizer):
    text = synthetic_texts(1, seed=13, min_words=30, max_words=30)[0]
    (row,) = mlm.replacements([text], 5, max_length=10)
    original = mlm_tokenizer(text)["input_ids"]
    assert len(row) == 5
    for r in row:
        assert 1 <= r.position <= 8  # inside the 10-token window, [CLS] and its [SEP] excluded
        ids = mlm_tokenizer(r.text)["input_ids"]
        assert len(ids) == len(original)
        assert [i for i, (a, b) in enumerate(zip(ids, original, strict=True)) if a != b] == [r.position]


def test_few_candidates_give_fewer_neighbours(mlm):
    (row,) = mlm.neighbours(["king"], 50, top_k=3)
    assert 0 < len(row) <= 3
    assert mlm.neighbours(["", "king"], 2, top_k=3)[0] == []
    assert mlm.neighbours(["king"], 0) == [[]]


def test_bad_options_are_user_errors(mlm):
    with pytest.raises(MiakitError, match="dropout"):
        mlm.neighbours(["king"], 2, dropout=1.5)
    with pytest.raises(MiakitError, match="top_k"):
        mlm.neighbours(["king"], 2, top_k=0)


def test_from_pretrained_is_lazy_and_matches_the_in_memory_model(mlm, mlm_dir, texts):
    target = HFMaskedLM.from_pretrained(str(mlm_dir), device="cpu")
    assert not target.loaded
    assert target.kind == "hf_mlm" and target.name == str(mlm_dir)
    assert target.fingerprint.startswith("sha256:") and target.fingerprint.endswith("|float32")
    assert target.tokenizer_fingerprint == mlm.tokenizer_fingerprint
    assert HFMaskedLM.from_pretrained(str(mlm_dir), device="cpu").fingerprint == target.fingerprint
    want = mlm.neighbours(texts, 6, seed=2)
    assert target.neighbours(texts, 6, seed=2) == want
    assert target.loaded
    target.release()
    assert not target.loaded
    assert target.neighbours(texts, 6, seed=2) == want


def test_from_pretrained_missing_directory_is_a_user_error(tmp_path):
    with pytest.raises(MiakitError, match="Could not load masked LM"):
        HFMaskedLM.from_pretrained(str(tmp_path / "nothing-here"))


def test_dropout_hits_only_the_scored_position(mlm, mlm_model, mlm_tokenizer):
    """Recompute the seeded embedding-dropout scores with plain torch: mask row j perturbs position j only."""
    from miakit.seeding import text_seed as _text_seed

    text = "The queen sent a letter to the doctor."
    ids = mlm_tokenizer(text)["input_ids"]
    special = set(mlm_tokenizer.all_special_ids)
    positions = [i for i, t in enumerate(ids) if t not in special]
    p, top_k, n = 0.7, 4, 9
    with torch.no_grad():
        embeds = mlm_model.get_input_embeddings()(torch.tensor([ids]))[0]
        generator = torch.Generator().manual_seed(_text_seed(5, text))
        masks = (torch.rand((len(positions), embeds.shape[1]), generator=generator) >= p).float() / (1 - p)
        want = []
        for j, i in enumerate(positions):
            x = embeds.clone()
            x[i] = x[i] * masks[j]
            probs = torch.softmax(mlm_model(inputs_embeds=x.unsqueeze(0)).logits[0, i].double(), dim=-1)
            for c in torch.topk(probs, top_k + 1).indices.tolist():
                if c != ids[i] and c not in special:
                    want.append((float(probs[c] / (1 - probs[ids[i]])), i, c))
    want.sort(key=lambda t: (-t[0], t[1], t[2]))
    (row,) = mlm.replacements([text], n, top_k=top_k, dropout=p, seed=5, batch_size=3)
    assert [(r.position, r.token_id) for r in row] == [(i, c) for _, i, c in want[:n]]
    assert [r.score for r in row] == pytest.approx([s for s, _, _ in want[:n]], rel=1e-4)
    (plain,) = mlm.replacements([text], n, top_k=top_k, dropout=0.0)
    assert [(r.position, r.token_id) for r in plain] != [(r.position, r.token_id) for r in row]


class _FullWidthHead:
    """Builds a BERT masked LM whose forward reshapes its logits to every input position (as some remote-code
    models do): the fast path, which runs the head on the scored positions only, cannot work for it."""

    @staticmethod
    def build(model):
        from transformers import BertForMaskedLM

        class FullWidthBert(BertForMaskedLM):
            def forward(self, inputs_embeds=None, **kwargs):
                out = super().forward(inputs_embeds=inputs_embeds, **kwargs)
                b, length = inputs_embeds.shape[:2]
                out.logits = out.logits.reshape(b, length, self.config.vocab_size)
                return out

        copy = FullWidthBert(model.config).eval()
        copy.load_state_dict(model.state_dict())
        return copy


def test_head_that_needs_every_position_falls_back_with_a_note(mlm, mlm_model, mlm_tokenizer, texts, tiny_model):
    from miakit.signals import NeighboursRequest
    from miakit.signals.engine import Engine
    from miakit.targets.hf_causal import HFCausalLM

    fallback = HFMaskedLM.from_model(_FullWidthHead.build(mlm_model), mlm_tokenizer, name="full-width")
    got = fallback.replacements(texts, 5)
    assert fallback._head_mode == "logits"
    assert len(fallback.fallbacks) == 1 and "RuntimeError" in fallback.fallbacks[0]
    assert "full-width" in fallback.fallbacks[0]
    want = mlm.replacements(texts, 5)  # the fast path on the same weights
    assert [[(r.position, r.token_id) for r in row] for row in got] == [
        [(r.position, r.token_id) for r in row] for row in want
    ]
    target = HFCausalLM.from_model(tiny_model, mlm_tokenizer, name="causal")
    engine = Engine({None: target}, None, progress=False, mlms={"full-width": HFMaskedLM.from_model(
        _FullWidthHead.build(mlm_model), mlm_tokenizer, name="full-width")})  # fmt: skip
    engine.run([NeighboursRequest(t, "full-width", n=2) for t in texts])
    assert engine.notes["full-width"].fallbacks == fallback.fallbacks  # the report can show it, once


def test_an_unexpected_error_in_the_fast_path_is_raised_not_hidden(mlm_model, mlm_tokenizer, texts, monkeypatch):
    broken = HFMaskedLM.from_model(mlm_model, mlm_tokenizer)

    def bug(*args, **kwargs):
        raise ValueError("a bug in the gathered head")

    monkeypatch.setattr(broken, "_gathered_logits", bug)
    with pytest.raises(ValueError, match="a bug in the gathered head"):
        broken.replacements(texts, 2)
