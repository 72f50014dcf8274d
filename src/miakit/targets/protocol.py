"""The ``Target`` protocol: what the engine may ask of anything it computes signals with.

A target has an identity (``name``, ``fingerprint``, ``tokenizer_fingerprint``: part of every store key), declares
its ``capabilities`` and how many batches it can serve at once (``concurrency``: 1 for a model in this process,
more for a server), and has one method per request kind it serves. The engine dispatches each request kind to
its handler and calls only these methods; it never asks which class a target is. A target lacking a capability
may leave that kind's method out: the planner skips the attacks that need it before any request is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from miakit.signals.generation import Generation
from miakit.signals.next_tokens import NextTokens
from miakit.signals.requests import GenerationRequest
from miakit.targets.capability import Capability


@runtime_checkable
class Target(Protocol):
    """Identity, capabilities and housekeeping: what every target has."""

    name: str
    fingerprint: str
    tokenizer_fingerprint: str
    capabilities: frozenset[Capability]
    concurrency: int
    max_length: int  # context length in tokens

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this target."""
        ...

    def release(self) -> None:
        """Free what can be rebuilt (weights, caches) so several targets can be used in turn."""
        ...


@runtime_checkable
class TokenScoringTarget(Target, Protocol):
    """Serves token statistics (``TOPK_LOGPROBS`` or ``FULL_LOGITS``), token lengths and token counts."""

    vocab_size: int

    def encode(self, text: str) -> list[int]:
        """Token ids as the target's tokenizer makes them (special tokens it adds by default included)."""
        ...

    def encode_pair(self, context: str, text: str) -> tuple[list[int], list[int]]:
        """``context + text`` tokenised jointly and split at the boundary."""
        ...

    def bos_id(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray: ...

    def token_stats(self, batch: Sequence[tuple[Sequence[int], int]], topk: int = 0) -> list[dict[str, np.ndarray]]:
        """Per (token ids, first scored position): the ``TokenStats`` fields of every scored token; fields the
        target cannot compute (a server's full-distribution summaries) are NaN. ``topk`` > 0: the distribution
        summaries are those of the top-k approximation (``logit_stats.topk_summaries``)."""
        ...

    def token_stats_prefixed(
        self, prefix: Sequence[int], batch: Sequence[Sequence[int]], topk: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """As ``token_stats`` for continuations of one shared prefix; NotImplementedError where no key/value
        cache can be shared (the engine then scores whole sequences)."""
        ...


@runtime_checkable
class GeneratingTarget(Target, Protocol):
    """Serves ``GenerationRequest``s (``GENERATION``)."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]: ...


@runtime_checkable
class NextTokensTarget(Target, Protocol):
    """Serves ``NextTokensRequest``s (``GENERATION`` is enough: only generated tokens are read)."""

    def next_tokens(self, batch: Sequence[Sequence[int]]) -> list[NextTokens]:
        """Per text (token ids, at least two), its greedy next token after every prefix ``ids[:i]``, i = 1..n-1,
        aligned with ``ids[1:]``, and both tokens decoded one by one (``NextTokens``)."""
        ...

    def decode_pieces(self, ids: Sequence[int]) -> list[str]:
        """Each token id decoded on its own."""
        ...
