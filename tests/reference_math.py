"""Independent float64 computations used as ground truth by the tests (plain torch, no miakit code)."""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def reference_token_stats(model, ids: list[int], first: int = 1) -> dict[str, np.ndarray]:
    """Per scored position j >= first: statistics of softmax(logits[j-1]) for token ids[j], in float64."""
    logits = model(torch.tensor([ids])).logits[0].double()
    rows = logits[first - 1 : len(ids) - 1]
    targets = torch.tensor(ids[first:])
    logp = torch.log_softmax(rows, dim=-1)
    p = logp.exp()
    lp = logp[torch.arange(len(targets)), targets]
    mu = (p * logp).sum(-1)
    var = (p * logp**2).sum(-1) - mu**2
    return {
        "token_ids": targets.numpy(),
        "logprob": lp.numpy(),
        "mu": mu.numpy(),
        "sigma": var.clamp_min(0).sqrt().numpy(),
        "entropy": (-(p * logp).sum(-1)).numpy(),
        "renyi_05": (1 / (1 - 0.5) * torch.log((p**0.5).sum(-1))).numpy(),
        "renyi_2": (1 / (1 - 2) * torch.log((p**2).sum(-1))).numpy(),
        "renyi_inf": (-torch.log(p.max(-1).values)).numpy(),
        "max_logprob": logp.max(-1).values.numpy(),
        "rank": (1 + (p > p[torch.arange(len(targets)), targets][:, None]).sum(-1)).double().numpy(),
    }


@torch.no_grad()
def reference_topk_stats(model, ids: list[int], k: int, first: int = 1) -> dict[str, np.ndarray]:
    """As ``reference_token_stats`` for the top-k approximation: per position, the k most likely tokens and the
    actual one, their full-distribution log-probs v, q = softmax(v); mu and sigma of v under q, entropies of q."""
    logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits[first - 1 : len(ids) - 1], dim=-1).numpy()
    out: dict[str, list[float]] = {n: [] for n in ("logprob", "mu", "sigma", "entropy", "renyi_05", "renyi_2")}
    out["renyi_inf"] = []
    for row, actual in zip(logp, ids[first:], strict=True):
        chosen = list(np.argsort(-row, kind="stable")[:k])
        if actual not in chosen:
            chosen.append(actual)
        v = row[chosen]
        q = np.exp(v) / np.exp(v).sum()
        mu = float((q * v).sum())
        out["logprob"].append(float(row[actual]))
        out["mu"].append(mu)
        out["sigma"].append(float(np.sqrt((q * (v - mu) ** 2).sum())))
        out["entropy"].append(float(-(q * np.log(q)).sum()))
        out["renyi_05"].append(float(2 * np.log(np.sqrt(q).sum())))
        out["renyi_2"].append(float(-np.log((q**2).sum())))
        out["renyi_inf"].append(float(-np.log(q.max())))
    return {n: np.asarray(v) for n, v in out.items()}
