"""The stored form of TokenStats: exact round trip, dtypes kept, empty records, foreign blobs refused."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest

from miakit.signals import TokenStats

FIELDS = ("logprob", "mu", "sigma", "entropy", "renyi_05", "renyi_2", "renyi_inf", "max_logprob", "rank")


def _stats(n: int, seed: int = 0) -> TokenStats:
    rng = np.random.default_rng(seed)
    arrays = {name: rng.normal(size=n) for name in FIELDS}
    arrays["token_ids"] = rng.integers(0, 2**31 - 1, size=n)
    return TokenStats.from_arrays(arrays)


@pytest.mark.parametrize("n", [0, 1, 257])
def test_round_trip_is_exact_and_writable(n):
    stats = _stats(n, seed=n)
    back = TokenStats.from_bytes(stats.to_bytes())
    assert len(back) == n
    for name in ("token_ids", *FIELDS):
        original, restored = getattr(stats, name), getattr(back, name)
        assert restored.dtype == original.dtype and restored.shape == (n,)
        np.testing.assert_array_equal(restored, original)
    if n:
        back.logprob[0] = 0.0  # attacks may work on the arrays in place
        assert stats.logprob[0] != 0.0 or n == 0


def test_a_blob_of_another_format_is_refused():
    buf = io.BytesIO()
    np.savez(buf, logprob=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="not a stored TokenStats"):
        TokenStats.from_bytes(zlib.compress(buf.getvalue()))
