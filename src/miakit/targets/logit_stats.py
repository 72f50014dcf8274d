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
# Rows reduced together: ~1.5 M floats (6 MiB), so the dozen passes of reduce_logits run from cache.
BLOCK_ELEMENTS = 3 << 19


@torch.no_grad()
def reduce_logits(logits: torch.Tensor, targets: torch.Tensor, inplace: bool = False) -> dict[str, torch.Tensor]:
    """Statistics of one chunk of logits [M, V] for the actual next tokens [M], all in float32.

    Written for memory traffic: one [M, V] buffer is allocated and the logits are overwritten in place,
    about a dozen passes in all. Row blocks small enough to stay in cache keep those passes cheap.
    """
    z = logits.float()
    if z.data_ptr() == logits.data_ptr() and not inplace:
        z = z.clone()  # the caller's tensor is overwritten only when it says so
    z_target = z.gather(1, targets[:, None]).squeeze(1)
    z_max = z.amax(1)
    rank = 1 + (z > z_target[:, None]).sum(1)
    p = torch.sub(z, z_max[:, None]).exp_()  # unnormalised probabilities
    total = p.sum(1)
    lse = z_max + total.log()
    p.div_(total[:, None])
    mean_z = torch.linalg.vecdot(p, z)  # E_p[z]; E_p[log p] = E_p[z] - lse
    renyi_2 = -torch.log(torch.linalg.vecdot(p, p))
    z.sub_(mean_z[:, None]).square_()  # (log p - E_p[log p])^2, centred: no cancellation
    sigma = torch.linalg.vecdot(p, z).clamp_min(0).sqrt()
    renyi_05 = 2.0 * torch.log(p.sqrt_().sum(1))
    mu = mean_z - lse
    max_logprob = z_max - lse
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
    block = max(1, BLOCK_ELEMENTS // max(1, vocab_size))
    for start in range(0, n, step):
        chunk = features[start : start + step]
        logits = to_logits(chunk)
        owned = logits.data_ptr() != chunk.data_ptr()  # fresh head output: free to overwrite
        for b in range(0, logits.shape[0], block):
            rows = logits[b : b + block]
            stats = reduce_logits(rows, targets[start + b : start + b + rows.shape[0]], inplace=owned)
            for k in STAT_FIELDS:
                parts[k].append(stats[k])
    if n == 0:
        empty = torch.empty(0, dtype=torch.float32, device=features.device)
        return {k: empty for k in STAT_FIELDS}
    return {k: torch.cat(v) for k, v in parts.items()}
