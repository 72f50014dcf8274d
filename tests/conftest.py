"""Shared fixtures: tiny causal LMs and tokenizers built inside the tests (no downloads, ever)."""

from __future__ import annotations

import random

import pytest

WORDS = (
    "the of and to in is was for on that with as by at from his her which or are an be this were had "
    "king queen river stone field winter summer bread iron silver garden tower horse ship road night "
    "morning city village forest letter music doctor soldier market bridge window candle mountain storm"
).split()


def synthetic_texts(n: int, seed: int = 0, min_words: int = 8, max_words: int = 30) -> list[str]:
    """Seeded pseudo-sentences; distinct enough that a small model can memorise some of them."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))]
        texts.append(" ".join(words).capitalize() + ".")
    return texts


def make_tokenizer(texts: list[str], vocab_size: int = 300):
    """A byte-level BPE tokenizer trained on texts, wrapped for transformers (no BOS added, like GPT-2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def make_model(vocab_size: int, n_positions: int = 64, seed: int = 0, n_layer: int = 2, n_embd: int = 32):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tokenizer(synthetic_texts(400, seed=123))


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    return make_model(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, tiny_tokenizer):
    """The random tiny model saved as a Hugging Face directory (safetensors + tokenizer)."""
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An isolated MIAKIT_CACHE for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("MIAKIT_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def trained_scenario(tmp_path_factory):
    """A tiny GPT-2 trained from scratch on 120 bundled passages; 120 others are certain non-members.

    Also a reference model of the same size trained on a disjoint pool (no member, no evaluated non-member).
    """
    from miakit.scenarios import load_bundled_passages, train_tiny_gpt

    passages = [p["text"] for p in load_bundled_passages()]
    rng = random.Random(0)
    pool = rng.sample(passages, 480)
    members, nonmembers, ref_pool = pool[:120], pool[120:240], pool[240:480]
    root = tmp_path_factory.mktemp("scenario")
    target = train_tiny_gpt(members, root / "target", epochs=20, batch_size=8, seed=0)
    reference = train_tiny_gpt(ref_pool, root / "reference", epochs=4, seed=1)
    return {"target": target, "reference": reference, "members": members, "nonmembers": nonmembers}
