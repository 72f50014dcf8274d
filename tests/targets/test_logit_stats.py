import numpy as np
import pytest
import torch

from miakit.targets.logit_stats import STAT_FIELDS, Workspace, chunked_statistics, reduce_logits, topk_summaries


def _reference(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, np.ndarray]:
    z = logits.double()
    logp = torch.log_softmax(z, -1)
    p = logp.exp()
    idx = torch.arange(len(targets))
    mu = (p * logp).sum(-1)
    return {
        "logprob": logp[idx, targets].numpy(),
        "mu": mu.numpy(),
        "sigma": ((p * logp**2).sum(-1) - mu**2).sqrt().numpy(),
        "entropy": (-mu).numpy(),
        "renyi_05": (2 * torch.log((p**0.5).sum(-1))).numpy(),
        "renyi_2": (-torch.log((p**2).sum(-1))).numpy(),
        "renyi_inf": (-logp.max(-1).values).numpy(),
        "max_logprob": logp.max(-1).values.numpy(),
        "rank": (1 + (z > z[idx, targets][:, None]).sum(-1)).double().numpy(),
    }


@pytest.mark.parametrize("scale", [0.5, 3.0, 12.0])
def test_reduce_logits_matches_float64_definitions(scale):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 300, generator=gen) * scale
    targets = torch.randint(0, 300, (50,), generator=gen)
    got = reduce_logits(logits, targets)
    want = _reference(logits, targets)
    for name in STAT_FIELDS:
        np.testing.assert_allclose(got[name].numpy(), want[name], rtol=2e-5, atol=2e-5, err_msg=name)


def test_rank_counts_strictly_more_likely_tokens():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0], [5.0, 1.0, 1.0, 1.0]])
    got = reduce_logits(logits, torch.tensor([1, 2]))
    assert got["rank"].tolist() == [1.0, 2.0]


def test_chunking_does_not_change_results():
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(37, 16, generator=gen)
    head = torch.nn.Linear(16, 200, bias=False)
    targets = torch.randint(0, 200, (37,), generator=gen)
    whole = chunked_statistics(features, targets, head, 200, chunk_elements=10**9)
    tiny_chunks = chunked_statistics(features, targets, head, 200, chunk_elements=600)  # 3 rows per chunk
    for name in STAT_FIELDS:
        torch.testing.assert_close(whole[name], tiny_chunks[name])


def test_empty_input_gives_empty_statistics():
    out = chunked_statistics(torch.empty(0, 4), torch.empty(0, dtype=torch.long), lambda x: x, 10)
    assert all(out[name].numel() == 0 for name in STAT_FIELDS)


@pytest.mark.parametrize("bias", [False, True])
def test_shared_workspace_gives_the_same_statistics_as_a_plain_head(bias):
    """Reused scratch (grown, then reused for a smaller batch) must not leak values between calls."""
    gen = torch.Generator().manual_seed(2)
    head = torch.nn.Linear(16, 200, bias=bias)
    workspace = Workspace()
    for rows in (5, 40, 11):  # grow the buffers, then reuse them partly
        features = torch.randn(rows, 16, generator=gen)
        targets = torch.randint(0, 200, (rows,), generator=gen)
        got = chunked_statistics(features, targets, head, 200, chunk_elements=2000, workspace=workspace)
        want = _reference(head(features).detach(), targets)
        for name in STAT_FIELDS:
            np.testing.assert_allclose(got[name].numpy(), want[name], rtol=2e-5, atol=2e-5, err_msg=name)


def test_precomputed_logits_are_overwritten_only_when_owned():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(9, 50, generator=gen)
    targets = torch.randint(0, 50, (9,), generator=gen)
    kept = logits.clone()
    chunked_statistics(logits, targets, lambda x: x, 50)
    torch.testing.assert_close(logits, kept)  # the caller's tensor is untouched by default
    owned = chunked_statistics(logits, targets, lambda x: x, 50, features_owned=True)
    want = _reference(kept, targets)
    np.testing.assert_allclose(owned["sigma"].numpy(), want["sigma"], rtol=2e-5, atol=2e-5)


def _topk_reference(logits: torch.Tensor, targets: torch.Tensor, k: int) -> dict[str, np.ndarray]:
    """Per row, in plain float64 Python: the top-k tokens and the actual one, renormalised."""
    logp = torch.log_softmax(logits.double(), -1).numpy()
    out: dict[str, list[float]] = {name: [] for name in ("mu", "sigma", "entropy", "renyi_05", "renyi_2", "renyi_inf")}
    for row, actual in zip(logp, targets.tolist(), strict=True):
        chosen = sorted(range(len(row)), key=lambda j: -row[j])[:k]
        if actual not in chosen:
            chosen.append(actual)
        v = [float(row[j]) for j in chosen]
        total = sum(np.exp(x) for x in v)
        q = [np.exp(x) / total for x in v]
        mu = sum(qi * x for qi, x in zip(q, v, strict=True))
        out["mu"].append(mu)
        out["sigma"].append(np.sqrt(sum(qi * (x - mu) ** 2 for qi, x in zip(q, v, strict=True))))
        out["entropy"].append(-sum(qi * np.log(qi) for qi in q))
        out["renyi_05"].append(2 * np.log(sum(np.sqrt(qi) for qi in q)))
        out["renyi_2"].append(-np.log(sum(qi * qi for qi in q)))
        out["renyi_inf"].append(-np.log(max(q)))
    return {name: np.asarray(values) for name, values in out.items()}


@pytest.mark.parametrize("k", [1, 5, 40])
def test_topk_approximation_matches_float64_definitions(k):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(60, 300, generator=gen) * 3
    targets = torch.randint(0, 300, (60,), generator=gen)
    targets[:10] = logits[:10].argmax(1)  # some actual tokens among the top-k, the rest mostly not
    got = reduce_logits(logits, targets, topk=k)
    want = _topk_reference(logits, targets, k)
    for name, values in want.items():
        np.testing.assert_allclose(got[name].numpy(), values, rtol=1e-5, atol=1e-5, err_msg=name)
    full = reduce_logits(logits, targets)
    for name in ("logprob", "max_logprob", "rank"):  # exact whatever the approximation
        torch.testing.assert_close(got[name], full[name])


def test_topk_approximation_with_the_whole_vocabulary_is_the_full_distribution():
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(20, 50, generator=gen) * 2
    targets = torch.randint(0, 50, (20,), generator=gen)
    full, top = reduce_logits(logits, targets), reduce_logits(logits, targets, topk=50)
    for name in ("mu", "sigma", "entropy", "renyi_05", "renyi_2", "renyi_inf"):
        np.testing.assert_allclose(top[name].numpy(), full[name].numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_topk_summaries_ignore_absent_slots():
    shown = torch.tensor([[-0.5, -1.5, float("nan")], [-0.5, -1.5, float("-inf")], [-0.5, -1.5, -3.0]])
    got = topk_summaries(shown)
    for name, values in got.items():
        assert torch.isfinite(values).all(), name
        assert values[0] == values[1], name
    assert got["entropy"][2] > got["entropy"][0]  # a third token spreads the distribution
