"""Per-position statistics of the next-token distribution, reduced on the model's device in chunks.

Full-vocabulary rows exist only one chunk at a time and never leave the device: each scored position
yields a handful of floats (the fields of ``TokenStats``).
"""

from __future__ import annotations

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

# Elements of a [positions, vocab] float32 chunk (128 MiB); a few temporaries of this size coexist. Larger
# chunks keep the output-head matmul efficient (about 680 positions per chunk for a 49k vocabulary).
DEFAULT_CHUNK_ELEMENTS = 1 << 25


@torch.no_grad()
def reduce_logits(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Statistics of one chunk of logits [M, V] for the actual next tokens [M], all in float32."""
    z = logits.float()
    z_target = z.gather(1, targets[:, None]).squeeze(1)
    lse = torch.logsumexp(z, dim=1)
    logp = z - lse[:, None]
    p = logp.exp()
    p_logp = p * logp
    mu = p_logp.sum(1)  # E_p[log p] = -H
    centred = logp.sub_(mu[:, None])  # in place: log p - mu, for a variance without cancellation
    torch.mul(p, centred, out=p_logp)
    sigma = torch.linalg.vecdot(p_logp, centred).clamp_min(0).sqrt()
    renyi_2 = -torch.log(torch.linalg.vecdot(p, p))
    renyi_05 = 2.0 * torch.log(p.sqrt_().sum(1))  # p is consumed here
    max_logprob = z.max(1).values - lse
    rank = 1 + (z > z_target[:, None]).sum(1)
    return {
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


@torch.no_grad()
def chunked_statistics(
    features: torch.Tensor,
    targets: torch.Tensor,
    to_logits: Callable[[torch.Tensor], torch.Tensor],
    vocab_size: int,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> dict[str, torch.Tensor]:
    """Apply ``to_logits`` to row chunks of ``features`` [M, ...] and reduce each chunk to statistics."""
    n = features.shape[0]
    step = max(1, chunk_elements // max(1, vocab_size))
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in STAT_FIELDS}
    for start in range(0, n, step):
        stats = reduce_logits(to_logits(features[start : start + step]), targets[start : start + step])
        for k in STAT_FIELDS:
            parts[k].append(stats[k])
    if n == 0:
        empty = torch.empty(0, dtype=torch.float32, device=features.device)
        return {k: empty for k in STAT_FIELDS}
    return {k: torch.cat(v) for k, v in parts.items()}
