"""Seeds derived from content, so that seeded randomness per text does not depend on order or batching."""

from __future__ import annotations

import hashlib


def text_seed(seed: int, text: str) -> int:
    """A 63-bit seed from (seed, text): sha256 of ``f"{seed}\\0{text}"``, first 8 bytes, little-endian."""
    digest = hashlib.sha256(f"{int(seed)}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
