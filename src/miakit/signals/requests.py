"""Typed, hashable requests: what an attack asks the engine for. Each has a stable ``key()``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import ClassVar


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenStatsRequest:
    """Token statistics of ``text`` (optionally conditioned on ``context``, which is not scored).

    ``model`` None means the audit target; otherwise the name of a reference model known to the engine.
    """

    kind: ClassVar[str] = "token_stats"
    text: str
    context: str = ""
    model: str | None = None

    def key(self) -> str:
        """Hash of the request kind and content (model identity is added by the engine)."""
        return _sha(json.dumps([self.kind, _sha(self.text), _sha(self.context)]))


@dataclass(frozen=True)
class TokenCountsRequest:
    """Occurrences of every token id of a model's tokenizer over a reference corpus.

    ``corpus`` is a file path, or None for the engine's default (bundled) reference corpus.
    """

    kind: ClassVar[str] = "token_counts"
    corpus: str | None = None
    model: str | None = None

    def key(self) -> str:
        return _sha(json.dumps([self.kind, asdict(self)]))


Request = TokenStatsRequest | TokenCountsRequest
