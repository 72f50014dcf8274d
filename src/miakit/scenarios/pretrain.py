"""Train a small GPT-2 from scratch on known texts: a target whose members are certain.

Everything the model has seen is the ``texts`` argument (its tokenizer is trained on them too, unless one is
passed in), so any other passage of the same corpus is a true non-member. Training is seeded and runs in a
plain torch loop on CPU in seconds; the model and tokenizer are saved with ``save_pretrained`` (safetensors) and
load back with ``AutoModelForCausalLM`` / ``AutoTokenizer`` like any hub checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["EOS_TOKEN", "SIZES", "train_tiny_gpt"]

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


def _rows(texts: Sequence[str], tokenizer, max_length: int) -> list[list[int]]:
    """Token rows of at most ``max_length``: each text plus EOS, cut into consecutive windows."""
    rows: list[list[int]] = []
    eos = tokenizer.eos_token_id
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    for ids in encoded:
        ids = [*ids, eos]
        for start in range(0, len(ids), max_length):
            window = ids[start : start + max_length]
            if len(window) >= 2:  # a single token has nothing to predict
                rows.append(window)
    return rows


def _batches(rows: list[list[int]], batch_size: int, gen) -> list[list[list[int]]]:
    """One epoch of batches: a seeded shuffle, rows of similar length grouped (little padding), batch order
    shuffled again. Pools of 32 batches are sorted by length, so batches stay random in content."""
    import torch

    order = torch.randperm(len(rows), generator=gen).tolist()
    pool = batch_size * 32
    batches: list[list[list[int]]] = []
    for p in range(0, len(order), pool):
        chunk = sorted(order[p : p + pool], key=lambda i: len(rows[i]))
        batches.extend([rows[i] for i in chunk[b : b + batch_size]] for b in range(0, len(chunk), batch_size))
    perm = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in perm]


def _collate(batch: list[list[int]], pad: int):
    """Right-padded ``input_ids`` and ``attention_mask`` tensors."""
    import torch

    width = max(len(r) for r in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for j, r in enumerate(batch):
        ids[j, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[j, : len(r)] = 1
    return ids, mask


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]training {task.fields[size]} GPT[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        transient=False,
    )


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
    rows = _rows(texts, tokenizer, max_length)
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

    steps_per_epoch = math.ceil(len(rows) / batch_size)
    total_steps = steps_per_epoch * epochs
    warmup = max(1, round(warmup_frac * total_steps)) if warmup_frac > 0 else 0

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        span = max(1, total_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / span))

    epoch_losses: list[float] = []
    old_threads = torch.get_num_threads()
    bar = _progress(progress)
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = GPT2LMHeadModel(config)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
            gen = torch.Generator().manual_seed(seed)
            task = None
            if bar is not None:
                bar.start()
                task = bar.add_task("train", total=total_steps, size=size, epoch=0, loss=float("nan"))
            for epoch in range(epochs):
                loss_sum, tok_sum = 0.0, 0
                for batch in _batches(rows, batch_size, gen):
                    ids, mask = _collate(batch, pad)
                    labels = ids.masked_fill(mask == 0, -100)
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    # Shift here rather than passing labels: the loss is ours, a mean over real tokens.
                    tgt = labels[:, 1:]
                    loss = torch.nn.functional.cross_entropy(
                        logits[:, :-1].reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                    sched.step()
                    n = int((tgt != -100).sum())
                    value = loss.item()
                    loss_sum += value * n
                    tok_sum += n
                    if bar is not None:
                        bar.update(task, advance=1, epoch=epoch + 1, loss=value)
                epoch_losses.append(loss_sum / max(1, tok_sum))
    finally:
        if bar is not None:
            bar.stop()
        torch.set_num_threads(old_threads)

    model.eval()
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)

    digest = hashlib.sha256()
    for t in texts:
        digest.update(hashlib.sha256(t.encode("utf-8")).digest())
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
        "texts_sha256": digest.hexdigest(),
        "epoch_mean_loss": epoch_losses,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "torch_threads": num_threads if num_threads is not None else old_threads,
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out
