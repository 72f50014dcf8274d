"""The training loop shared by every scenario: seeded, length-grouped batches, AdamW, warm-up + cosine.

Scenarios build targets whose training data is known exactly; this module turns token rows into a trained
model, reproducibly for a given seed, and reports the mean loss of each epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["texts_sha256", "token_rows", "train_rows"]


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 over the sha256 of every training text, in order: which texts a model was trained on."""
    import hashlib

    digest = hashlib.sha256()
    for t in texts:
        digest.update(hashlib.sha256(t.encode("utf-8")).digest())
    return digest.hexdigest()


def token_rows(
    texts: Sequence[str], tokenizer: Any, max_length: int, *, add_special_tokens: bool = False
) -> list[list[int]]:
    """Token rows of at most ``max_length``: each text plus EOS, cut into consecutive windows.

    ``add_special_tokens`` keeps what the tokenizer adds (e.g. a BOS), so that a fine-tune trains on the
    same token sequence that an audit of the text scores.
    """
    rows: list[list[int]] = []
    eos = tokenizer.eos_token_id
    encoded = tokenizer(list(texts), add_special_tokens=add_special_tokens, verbose=False)["input_ids"]
    for ids in encoded:
        ids = [*ids, eos] if eos is not None else list(ids)
        for start in range(0, len(ids), max_length):
            window = ids[start : start + max_length]
            if len(window) >= 2:  # a single token has nothing to predict
                rows.append(window)
    return rows


def _batches(rows: list[list[int]], batch_size: int, gen: Any) -> list[list[list[int]]]:
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


def _collate(batch: list[list[int]], pad: int) -> tuple[Any, Any]:
    """Right-padded ``input_ids`` and ``attention_mask`` tensors."""
    import torch

    width = max(len(r) for r in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for j, r in enumerate(batch):
        ids[j, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[j, : len(r)] = 1
    return ids, mask


def _progress_bar(enabled: bool, description: str) -> Any:
    """A rich bar on a terminal; None when progress is off or the output is piped (plain lines are used then)."""
    from miakit.progress import interactive

    if not enabled or not interactive():
        return None
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(escape(description), style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epoch {task.fields[epoch]}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        transient=False,
    )


def train_rows(
    model: Any,
    rows: list[list[int]],
    pad: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    weight_decay: float = 0.0,
    warmup_frac: float = 0.05,
    parameters: Iterable[Any] | None = None,
    num_threads: int | None = None,
    progress: bool = False,
    description: str = "training",
    on_epoch: Callable[[int], None] | None = None,
) -> list[float]:
    """Train ``model`` (a causal LM) on token ``rows`` and return the mean token loss of each epoch.

    AdamW over ``parameters`` (default: those that require grad), linear warm-up over ``warmup_frac`` of the
    steps then cosine decay to 10 % of ``lr``, gradient norm clipped at 1. Padding is masked out of the loss.
    Seeding uses a forked torch RNG (the caller's global state is left as it was); ``num_threads`` sets torch's
    intra-op threads for the duration only. ``on_epoch(e)`` is called after epoch ``e`` (1-based).
    """
    import torch

    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    if not rows:
        raise ValueError("no trainable token rows")
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
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
    bar = _progress_bar(progress, description)
    plain = None
    if progress and bar is None:  # piped output (CI, a log file): a plain line every tenth of the steps or 30 s
        from miakit.progress import PlainProgress

        plain = PlainProgress(description, total_steps, "steps")
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.train()
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
            gen = torch.Generator().manual_seed(seed)
            task = None
            if bar is not None:
                bar.start()
                task = bar.add_task("train", total=total_steps, epoch=0, loss=float("nan"))
            for epoch in range(epochs):
                loss_sum, tok_sum = 0.0, 0
                for batch in _batches(rows, batch_size, gen):
                    ids, mask = _collate(batch, pad)
                    device = next(iter(params)).device
                    ids, mask = ids.to(device), mask.to(device)
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    # Shift here rather than passing labels: the loss is ours, a mean over real tokens.
                    tgt = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
                    loss = torch.nn.functional.cross_entropy(
                        logits[:, :-1].reshape(-1, logits.size(-1)).float(), tgt.reshape(-1), ignore_index=-100
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                    sched.step()
                    n = int((tgt != -100).sum())
                    value = loss.item()
                    loss_sum += value * n
                    tok_sum += n
                    if bar is not None:
                        bar.update(task, advance=1, epoch=epoch + 1, loss=value)
                    if plain is not None:
                        plain.advance(1)
                epoch_losses.append(loss_sum / max(1, tok_sum))
                if on_epoch is not None:
                    on_epoch(epoch + 1)
            if plain is not None:
                plain.finish()
    finally:
        if bar is not None:
            bar.stop()
        torch.set_num_threads(old_threads)
    model.eval()
    return epoch_losses
