import numpy as np
import pytest
import torch

from miakit.targets.logit_stats import STAT_FIELDS, Workspace, chunked_statistics, reduce_logits


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
