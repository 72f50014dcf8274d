"""The ``TokenStats`` record (one entry per scored token) and its compact serialisation for the store."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, fields

import numpy as np

# Bump when the computation of any statistic changes: it is part of every store key.
STATS_VERSION = 1


@dataclass(frozen=True)
class TokenStats:
    """Per scored token: the actual token, its log-prob and summaries of the next-token distribution."""

    token_ids: np.ndarray  # int32
    logprob: np.ndarray  # log p(actual token)
    mu: np.ndarray  # E_p[log p]
    sigma: np.ndarray  # std_p[log p]
    entropy: np.ndarray  # Shannon entropy (nats)
    renyi_05: np.ndarray
    renyi_2: np.ndarray
    renyi_inf: np.ndarray
    max_logprob: np.ndarray
    rank: np.ndarray  # 1 + number of tokens strictly more likely than the actual one

    def __len__(self) -> int:
        return int(self.logprob.shape[0])

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TokenStats:
        values = {}
        for f in fields(cls):
            dtype = np.int32 if f.name == "token_ids" else np.float32
            values[f.name] = np.ascontiguousarray(arrays[f.name], dtype=dtype)
        return cls(**values)

    @classmethod
    def concatenate(cls, parts: list[dict[str, np.ndarray]]) -> TokenStats:
        names = [f.name for f in fields(cls)]
        return cls.from_arrays({n: np.concatenate([p[n] for p in parts]) if parts else [] for n in names})

    def entropy_alpha(self, alpha: float) -> np.ndarray:
        """Rényi entropy of order alpha at each position (alpha 1 is Shannon)."""
        table = {0.5: self.renyi_05, 1.0: self.entropy, 2.0: self.renyi_2, float("inf"): self.renyi_inf}
        if float(alpha) not in table:
            raise ValueError(f"Rényi order {alpha} is not stored; available: 0.5, 1, 2, inf")
        return table[float(alpha)]

    def to_bytes(self) -> bytes:
        """Compact stored form: a magic tag, the token count, the int32 token ids, then the float32 fields."""
        n = len(self)
        floats = np.stack([getattr(self, name) for name in _FLOAT_FIELDS]) if n else np.zeros((0,), np.float32)
        payload = _MAGIC + struct.pack("<I", n) + self.token_ids.astype("<i4").tobytes()
        return zlib.compress(payload + floats.astype("<f4").tobytes(), 1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> TokenStats:
        """Inverse of ``to_bytes``; the arrays are writable and own no shared memory with other records."""
        raw = bytearray(zlib.decompress(blob))
        if raw[: len(_MAGIC)] != _MAGIC:
            raise ValueError("not a stored TokenStats record (unknown format)")
        head = len(_MAGIC) + 4
        (n,) = struct.unpack_from("<I", raw, len(_MAGIC))
        values = {"token_ids": np.frombuffer(raw, dtype="<i4", count=n, offset=head).astype(np.int32, copy=False)}
        floats = np.frombuffer(raw, dtype="<f4", count=n * len(_FLOAT_FIELDS), offset=head + 4 * n)
        floats = floats.reshape(len(_FLOAT_FIELDS), n).astype(np.float32, copy=False)
        values.update({name: floats[i] for i, name in enumerate(_FLOAT_FIELDS)})
        return cls(**values)


_MAGIC = b"MTS1"  # miakit token statistics, layout 1
_FLOAT_FIELDS = tuple(f.name for f in fields(TokenStats) if f.name != "token_ids")


def counts_to_bytes(counts: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(counts, dtype=np.int64))
    return zlib.compress(buf.getvalue(), 1)


def counts_from_bytes(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)))


def array_to_bytes(values: np.ndarray) -> bytes:
    """Any numeric array (dtype and shape kept), compressed: the stored form of white-box signals."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(values), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 1)


def array_from_bytes(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)
