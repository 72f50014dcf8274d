"""Seeded, batched generation for local causal LMs: the same continuations whatever the batch.

Each continuation has its own random generator, seeded from the request's seed, its prompt and its index, and
rows are left-padded with position ids that ignore the padding, so a request's texts do not depend on which
other requests share its batch (up to float rounding that would have to flip an argmax or a sampled bucket).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from miakit.seeding import text_seed
from miakit.signals.generation import Generation
from miakit.signals.requests import GenerationRequest


def row_seed(request: GenerationRequest, index: int) -> int:
    """The seed of continuation ``index`` of ``request``."""
    return text_seed(request.seed, f"{request.prompt}\x00{index}")


def filtered_logits(logp: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Log-probs of one row scaled by ``temperature`` with tokens outside the top-k / the nucleus set to -inf
    (the nucleus keeps the most likely tokens whose mass reaches ``top_p``, and always the first)."""
    scaled = logp / temperature
    if top_k and top_k < scaled.shape[-1]:
        kth = torch.topk(scaled, top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if top_p < 1.0:
        order = torch.argsort(scaled, descending=True)
        probs = torch.softmax(scaled[order], dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the strictly more likely tokens
        drop = order[before >= top_p]
        scaled = scaled.clone()
        scaled[drop] = float("-inf")
    return scaled


def _cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@torch.inference_mode()
def generate(target: Any, requests: Sequence[GenerationRequest]) -> list[Generation]:
    """Continuations of every request, all of their rows decoded together with a key/value cache."""
    from miakit.targets.hf_causal import _cache_argument

    model = target.model
    device = target.device
    tokenizer = target.tokenizer
    eos = {t for t in (tokenizer.eos_token_id, getattr(model.config, "eos_token_id", None)) if isinstance(t, int)}
    rows: list[tuple[int, int]] = [(i, j) for i, r in enumerate(requests) for j in range(r.n)]
    prompts = []
    for r in requests:
        ids = target.encode(r.prompt) or [target.bos_id()]
        budget = max(1, target.max_length - r.max_new_tokens)
        prompts.append(ids[-budget:])
    width = max(len(prompts[i]) for i, _ in rows)
    size = len(rows)
    input_ids = torch.zeros((size, width), dtype=torch.long)
    mask = torch.zeros((size, width), dtype=torch.long)
    for k, (i, _) in enumerate(rows):
        ids = prompts[i]
        input_ids[k, width - len(ids) :] = torch.as_tensor(ids, dtype=torch.long)
        mask[k, width - len(ids) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generators = []
    for i, j in rows:
        g = torch.Generator(device="cpu")
        g.manual_seed(row_seed(requests[i], j))
        generators.append(g)
    limits = [min(requests[i].max_new_tokens, target.max_length - len(prompts[i])) for i, _ in rows]
    tokens: list[list[int]] = [[] for _ in rows]
    logprobs: list[list[float]] = [[] for _ in rows]
    done = [limit <= 0 for limit in limits]
    output = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True)
    cache_name = _cache_argument(model)
    while not all(done):
        logp = torch.log_softmax(output.logits[:, -1].float(), dim=-1).cpu()
        chosen = torch.zeros(size, dtype=torch.long)
        for k, (i, _) in enumerate(rows):
            if done[k]:
                continue
            r = requests[i]
            if r.greedy:
                token = int(torch.argmax(logp[k]))
            else:
                weights = torch.softmax(filtered_logits(logp[k], r.temperature, r.top_k, r.top_p), dim=-1)
                token = int(torch.multinomial(weights, 1, generator=generators[k]))
            chosen[k] = token
            if token in eos:
                done[k] = True
                continue
            tokens[k].append(token)
            logprobs[k].append(float(logp[k, token]))
            if len(tokens[k]) >= limits[k]:
                done[k] = True
        if all(done):
            break
        mask = torch.cat([mask, torch.ones((size, 1), dtype=mask.dtype, device=device)], dim=1)
        positions = (positions[:, -1:] + 1).clamp(max=target.max_length - 1)  # finished rows run on, unread
        output = model(
            input_ids=chosen[:, None].to(device),
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{cache_name: _cache_of(output)},
        )
    results = []
    for i, r in enumerate(requests):
        ks = [k for k, (row_request, _) in enumerate(rows) if row_request == i]
        texts = tuple(tokenizer.decode(tokens[k], skip_special_tokens=True) for k in ks)
        results.append(Generation(texts, tuple(tuple(tokens[k]) for k in ks), tuple(tuple(logprobs[k]) for k in ks)))
        assert len(results[-1]) == r.n
    return results
