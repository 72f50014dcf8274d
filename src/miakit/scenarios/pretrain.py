"""Train a small GPT-2 from scratch on known texts: a target whose members are certain.

Everything the model has seen is the ``texts`` argument (its tokenizer is trained on them too, unless one is
passed in), so any other passage of the same corpus is a true non-member. Training is seeded and runs in a
plain torch loop on CPU in seconds; the model and tokenizer are saved with ``save_pretrained`` (safetensors) and
load back with ``AutoModelForCausalLM`` / ``AutoTokenizer`` like any hub checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from miakit.scenarios.training import texts_sha256, token_rows, train_rows

__all__ = ["EOS_TOKEN", "SIZES", "build_pretrain_scenario", "train_tiny_gpt"]

EOS_TOKEN = "<|endoftext|>"

# GPT-2 shapes; n_positions is the max_length argument.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"n_layer": 2, "n_embd": 128, "n_head": 2},
    "small": {"n_layer": 4, "n_embd": 256, "n_head": 4},
}

INFO_FILE = "miakit_training.json"


def _train_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int):
    """Byte-level BPE trained on ``texts``, wrapped for transformers; adds no BOS/EOS (like GPT-2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=max_length,
    )


def _reuse_tokenizer(tokenizer: Any, max_length: int):
    """A given tokenizer (or a directory holding one), with an EOS and a PAD token."""
    if isinstance(tokenizer, (str, Path)):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise ValueError("the tokenizer to reuse has no EOS token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = max_length
    return tokenizer


def train_tiny_gpt(
    texts: list[str],
    out_dir: Path | str,
    *,
    size: str = "tiny",
    epochs: int = 6,
    seed: int = 0,
    vocab_size: int = 2048,
    max_length: int = 128,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    warmup_frac: float = 0.05,
    tokenizer: Any = None,
    num_threads: int | None = None,
    progress: bool = False,
) -> Path:
    """Train a GPT-2 of ``size`` ("tiny" or "small") from scratch on ``texts`` and save it to ``out_dir``.

    Tokenizer: a byte-level BPE of ``vocab_size`` trained on ``texts``; ``tokenizer(text)`` adds no BOS (GPT-2's
    convention) and ``<|endoftext|>`` is EOS, BOS, UNK and PAD. Pass ``tokenizer`` (a directory such as another
    trained model's, or a transformers tokenizer) to reuse one instead, e.g. so that a reference model shares
    the target's tokens; ``vocab_size`` is then ignored.

    Model: GPT-2 with ``SIZES[size]`` layers/width, ``n_positions = max_length``, no dropout, and an output layer
    not tied to the input embeddings (it memorises faster at this scale). Each text is trained as its tokens
    plus EOS; a text longer than ``max_length`` tokens is cut into consecutive windows, so every token of every
    member is trained on.

    Training: AdamW (``lr``, ``weight_decay``), linear warm-up over ``warmup_frac`` of the steps then cosine
    decay to 10 %, gradient norm clipped at 1; each epoch a seeded shuffle, rows of similar length batched
    together (``batch_size`` rows, right-padded, padding masked out of the loss with label -100). With the
    defaults, 500 bundled passages give a LOSS attack AUROC of about 0.8 (members vs held-out passages); fewer
    rows per batch or more epochs memorise more.

    Seeding uses a forked torch RNG, so the caller's global RNG state is left as it was. ``num_threads`` sets
    torch's intra-op thread count for the duration of training only (None: leave it as it is). ``progress``
    shows a rich progress bar.

    Writes ``model.safetensors``, ``config.json``, the tokenizer files and ``miakit_training.json`` (the
    hyper-parameters, per-epoch mean loss, wall time and a sha256 of the training texts) to ``out_dir``, and
    returns it as a ``Path``.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a list of strings")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of strings")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    if epochs < 1 or batch_size < 1 or max_length < 2:
        raise ValueError("epochs and batch_size must be >= 1 and max_length >= 2")
    if vocab_size < 257:  # 256 byte symbols + EOS
        raise ValueError("vocab_size must be at least 257 for a byte-level BPE")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    if tokenizer is None:
        tokenizer = _train_tokenizer(texts, vocab_size, max_length)
    else:
        tokenizer = _reuse_tokenizer(tokenizer, max_length)
    rows = token_rows(texts, tokenizer, max_length)
    if not rows:
        raise ValueError("texts produced no trainable tokens")
    pad = tokenizer.pad_token_id

    shape = SIZES[size]
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max_length,
        n_embd=shape["n_embd"],
        n_layer=shape["n_layer"],
        n_head=shape["n_head"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        # An output layer of its own (not tied to the input embeddings) memorises markedly faster at this size:
        # LOSS AUROC 0.80 instead of 0.60-0.64 on 500 passages, 6 epochs (tied, best of lr 1e-3/3e-3/6e-3).
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
    )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    epoch_losses = train_rows(
        model,
        rows,
        pad,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        weight_decay=weight_decay,
        warmup_frac=warmup_frac,
        num_threads=num_threads,
        progress=progress,
        description=f"training {size} GPT",
    )
    old_threads = num_threads if num_threads is not None else torch.get_num_threads()

    model.eval()
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)

    info: dict[str, Any] = {
        "trainer": "miakit.scenarios.train_tiny_gpt",
        "size": size,
        "shape": shape,
        "epochs": epochs,
        "seed": seed,
        "vocab_size": len(tokenizer),
        "max_length": max_length,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup_frac": warmup_frac,
        "n_texts": len(texts),
        "n_rows": len(rows),
        "n_tokens": sum(len(r) for r in rows),
        "texts_sha256": texts_sha256(texts),
        "epoch_mean_loss": epoch_losses,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "torch_threads": old_threads,
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def build_pretrain_scenario(
    out: Path | str,
    *,
    corpus: str | Path | None = None,
    n_members: int = 250,
    n_nonmembers: int | None = None,
    size: str = "tiny",
    epochs: int = 6,
    duplicates: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    lr: float = 1e-3,
    max_length: int = 128,
    vocab_size: int = 2048,
    min_words: int | None = None,
    max_words: int | None = None,
    n_reference: int = 0,
    reference_epochs: int | None = None,
    n_calibration: int = 0,
    name: str | None = None,
    num_threads: int | None = None,
    progress: bool = False,
) -> Path:
    """Draw members and non-members from ``corpus`` (default: the bundled one), train a GPT-2 of ``size`` from
    scratch on the members, each ``duplicates`` times (as repeated documents in real pre-training data), and
    write the scenario directory ``out`` (see ``miakit.scenarios.layout``). Returns ``out``.

    The tokenizer is trained on the members only, so nothing about the non-members reaches the model. With
    ``n_reference``, a reference model of the same size (and the target's tokenizer) is trained for
    ``reference_epochs`` (default ``epochs``) on that many further passages, disjoint from members and
    non-members, and saved as ``reference/``: the reference attack's model, recorded as ``reference``. With
    ``n_calibration``, that many further members (trained on like the others) and as many further held-out
    non-members form ``calibration.jsonl``, never in ``dataset.jsonl``. ``name`` is the scenario's name in
    reports (default: what it is, in words).
    """
    from miakit.errors import MiakitError
    from miakit.scenarios.layout import provenance, scenario_split, split_off_calibration, write_scenario

    if duplicates < 1:
        raise MiakitError("--duplicates must be at least 1 (each member appears that many times).")
    out = Path(out).expanduser()
    started = time.perf_counter()
    members, nonmembers, *rest = scenario_split(
        corpus,
        n_members,
        n_nonmembers,
        seed=seed,
        min_words=min_words,
        max_words=max_words,
        n_extra=n_reference + 2 * n_calibration,
    )
    calibration_members, calibration_nonmembers, reference_texts = split_off_calibration(
        rest[0] if rest else [], n_calibration
    )
    common = {"size": size, "max_length": max_length, "batch_size": batch_size, "lr": lr}
    try:
        train_tiny_gpt(
            [t for t in members + calibration_members for _ in range(duplicates)],
            out / "model",
            epochs=epochs,
            seed=seed,
            vocab_size=vocab_size,
            num_threads=num_threads,
            progress=progress,
            **common,
        )
        if n_reference:
            train_tiny_gpt(
                reference_texts,
                out / "reference",
                epochs=reference_epochs or epochs,
                seed=seed + 1,
                tokenizer=out / "model",
                num_threads=num_threads,
                progress=progress,
                **common,
            )
    except ValueError as exc:
        raise MiakitError(f"Cannot train the pretrain scenario: {exc}") from exc
    training = json.loads((out / "model" / INFO_FILE).read_text(encoding="utf-8"))
    info = {
        "name": name or f"{size} GPT-2 trained from scratch on {len(members)} passages",
        "kind": "pretrain",
        "reference": "reference" if n_reference else None,
        "duplicates": duplicates,
        "training": training,
        **provenance(corpus, seed, min_words, max_words, started),
    }
    if n_reference:
        info["reference_training"] = json.loads((out / "reference" / INFO_FILE).read_text(encoding="utf-8"))
    write_scenario(out, members, nonmembers, info, calibration=(calibration_members, calibration_nonmembers))
    return out
