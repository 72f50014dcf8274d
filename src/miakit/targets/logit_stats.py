"""Per-position statistics of the next-token distribution, reduced on the model's device in chunks.

Full-vocabulary rows exist only one chunk at a time and never leave the device: each scored position
yields a handful of floats (the fields of ``TokenStats``). Scratch buffers live in a ``Workspace`` that
the target keeps between batches, so the reduction does not page-fault fresh memory for every chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

STAT_FIELDS = (
    "logprob",
    "mu",
    "sigma",
    "entropy",
    "renyi_05",
    "renyi_2",
    "renyi_inf",
    "max_logprob",
    "rank",
)

# The fields a top-k approximation replaces: summaries of the renormalised distribution over the top-k tokens
# and the actual one (the actual token's log-prob, the top log-prob and the rank stay exact).
TOPK_FIELDS = ("mu", "sigma", "entropy", "renyi_05", "renyi_2", "renyi_inf")

# Elements of a [positions, vocab] float32 chunk (128 MiB). Larger chunks keep the output-head matmul
# efficient (about 680 positions per chunk for a 49k vocabulary).
DEFAULT_CHUNK_ELEMENTS = 1 << 25
# Rows reduced together: ~1.5 M floats (6 MiB), so the dozen passes of reduce_logits run from cache.
BLOCK_ELEMENTS = 3 << 19


class Workspace:
    """Scratch buffers reused across chunks and batches (one logits chunk, two row blocks).

    Allocating them afresh per chunk costs about as much as the reduction itself on CPU (page faults);
    a target keeps one workspace and drops it with its weights.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}

    def get(self, name: str, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        """A [rows, cols] view of the named buffer on ``like``'s device and dtype, grown when needed."""
        key = (name, like.device, like.dtype)
        need = rows * cols
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < need:
            buf = torch.empty(need, device=like.device, dtype=like.dtype)
            self._buffers[key] = buf
        return buf[:need].view(rows, cols)

    def clear(self) -> None:
        self._buffers.clear()


@torch.no_grad()
def topk_summaries(logprobs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Summaries of the distribution q renormalised over a few tokens per position, from their log-probs
    ``logprobs`` [M, J] under the full distribution p (-inf or NaN: no token in that slot), in float64.

    ``mu`` and ``sigma`` are the mean and standard deviation of log p under q, so (log p(x) - mu) / sigma is the
    Min-K%++ z-score within q (the normaliser cancels); the entropies are those of q itself. This is the
    declared top-k approximation of the full-distribution attacks (``approx=topk``): an API shows the top-k
    log-probs and the actual token's, and the local model computes the same from its logits to compare.
    """
    v = logprobs.double()
    v = torch.where(torch.isnan(v), torch.full_like(v, -math.inf), v)
    present = torch.isfinite(v)
    top = v.amax(1, keepdim=True)
    w = torch.where(present, torch.exp(v - top), torch.zeros_like(v))
    q = w / w.sum(1, keepdim=True)
    log_q = torch.where(present, v - top - torch.log(w.sum(1, keepdim=True)), torch.zeros_like(v))
    safe_v = torch.where(present, v, torch.zeros_like(v))
    mu = (q * safe_v).sum(1)
    sigma = (q * (safe_v - mu[:, None]).square()).sum(1).clamp_min(0).sqrt()
    return {
        "mu": mu,
        "sigma": sigma,
        "entropy": -(q * log_q).sum(1),
        "renyi_05": 2.0 * torch.log(q.sqrt().sum(1)),
        "renyi_2": -torch.log(q.square().sum(1)),
        "renyi_inf": -log_q.masked_fill(~present, -math.inf).amax(1),
    }


@torch.no_grad()
def reduce_logits(
    logits: torch.Tensor,
    targets: torch.Tensor,
    inplace: bool = False,
    workspace: Workspace | None = None,
    topk: int = 0,
) -> dict[str, torch.Tensor]:
    """Statistics of one block of logits [M, V] for the actual next tokens [M], all in float32.

    Written for memory traffic: the logits are overwritten in place (``inplace``, else a copy) and two
    scratch rows blocks from ``workspace`` hold the probabilities and products; about a dozen passes.
    ``topk`` > 0: the distribution summaries are those of the top-``topk`` tokens and the actual one,
    renormalised (``topk_summaries``).
    """
    z = logits.float()
    if z.data_ptr() == logits.data_ptr() and not inplace:
        z = z.clone()  # the caller's tensor is overwritten only when it says so
    ws = workspace if workspace is not None else Workspace()
    p = ws.get("p", z.shape[0], z.shape[1], z)
    tmp = ws.get("tmp", z.shape[0], z.shape[1], z)
    z_target = z.gather(1, targets[:, None]).squeeze(1)
    z_max = z.amax(1)
    top = z.topk(min(topk, z.shape[1]), dim=1) if topk > 0 else None
    rank = 1 + (z > z_target[:, None]).sum(1, dtype=torch.int32)
    torch.sub(z, z_max[:, None], out=p).exp_()  # unnormalised probabilities
    total = p.sum(1)
    lse = z_max + total.log()
    p.div_(total[:, None])
    mean_z = torch.mul(p, z, out=tmp).sum(1)  # E_p[z]; E_p[log p] = E_p[z] - lse
    renyi_2 = -torch.log(torch.mul(p, p, out=tmp).sum(1))
    z.sub_(mean_z[:, None]).square_()  # (log p - E_p[log p])^2, centred: no cancellation
    sigma = torch.mul(p, z, out=tmp).sum(1).clamp_min(0).sqrt()
    renyi_05 = 2.0 * torch.log(p.sqrt_().sum(1))
    mu = mean_z - lse
    max_logprob = z_max - lse
    out = {
        "logprob": z_target - lse,
        "mu": mu,
        "sigma": sigma,
        "entropy": -mu,
        "renyi_05": renyi_05,
        "renyi_2": renyi_2,
        "renyi_inf": -max_logprob,
        "max_logprob": max_logprob,
        "rank": rank.float(),
    }
    if top is not None:
        actual_shown = (top.indices == targets[:, None]).any(1)
        actual = torch.where(actual_shown, torch.full_like(z_target, -math.inf), z_target - lse)
        shown = torch.cat([top.values - lse[:, None], actual[:, None]], dim=1)
        out.update({k: v.float() for k, v in topk_summaries(shown).items()})
    return out


def _head_into(head: torch.nn.Linear, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``head(x)`` written into ``out`` (no fresh [rows, vocab] allocation)."""
    if head.bias is None:
        return torch.mm(x, head.weight.t(), out=out)
    return torch.addmm(head.bias, x, head.weight.t(), out=out)


@torch.no_grad()
def chunked_statistics(
    features: torch.Tensor,
    targets: torch.Tensor,
    to_logits: Callable[[torch.Tensor], torch.Tensor],
    vocab_size: int,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    workspace: Workspace | None = None,
    features_owned: bool = False,
    topk: int = 0,
) -> dict[str, torch.Tensor]:
    """Apply ``to_logits`` to row chunks of ``features`` [M, ...] and reduce each chunk to statistics.

    A float32 ``nn.Linear`` head writes straight into the workspace's logits buffer; any other callable
    (or the identity, for precomputed logits) is copied only when it returns the caller's memory and
    ``features_owned`` does not allow overwriting it. ``topk``: see ``reduce_logits``.
    """
    n = features.shape[0]
    if n == 0:
        empty = torch.empty(0, dtype=torch.float32, device=features.device)
        return {k: empty for k in STAT_FIELDS}
    ws = workspace if workspace is not None else Workspace()
    most = max(1, chunk_elements // max(1, vocab_size))
    step = math.ceil(n / math.ceil(n / most))  # equal chunks: no small remainder matmul
    block = max(1, BLOCK_ELEMENTS // max(1, vocab_size))
    direct = (
        isinstance(to_logits, torch.nn.Linear)
        and to_logits.weight.dtype == torch.float32
        and features.dtype == torch.float32
    )
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in STAT_FIELDS}
    for start in range(0, n, step):
        chunk = features[start : start + step]
        if direct:
            logits = _head_into(to_logits, chunk, ws.get("logits", chunk.shape[0], vocab_size, chunk))
            owned = True
        else:
            logits = to_logits(chunk)
            owned = features_owned or logits.data_ptr() != chunk.data_ptr()  # fresh output: free to overwrite
        for b in range(0, logits.shape[0], block):
            rows = logits[b : b + block]
            stats = reduce_logits(
                rows, targets[start + b : start + b + rows.shape[0]], inplace=owned, workspace=ws, topk=topk
            )
            for k in STAT_FIELDS:
                parts[k].append(stats[k])
    return {k: torch.cat(v) for k, v in parts.items()}
