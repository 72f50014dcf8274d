"""Typed, hashable requests: what an attack asks the engine for. Each has a stable ``key()``.

Each request class declares its signal kind and that kind's ``version``: both are part of every store key, so
bumping a kind's version (when the computation of that signal changes) recomputes that kind only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import ClassVar

from miakit.signals.generation import GENERATION_VERSION
from miakit.signals.next_tokens import NEXT_TOKENS_VERSION
from miakit.signals.token_stats import STATS_VERSION


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenStatsRequest:
    """Token statistics of ``text`` (optionally conditioned on ``context``, which is not scored).

    ``model`` None means the audit target; otherwise the name of a reference model known to the engine.
    ``topk`` > 0 asks for the declared top-k approximation of the distribution summaries (mu, sigma, the
    entropies): those of the top-``topk`` tokens and the actual one, renormalised, as an API that shows only
    the top-k log-probs allows; 0 is the full distribution.
    """

    kind: ClassVar[str] = "token_stats"
    version: ClassVar[int] = STATS_VERSION
    text: str
    context: str = ""
    model: str | None = None
    topk: int = 0

    def __post_init__(self) -> None:
        if self.topk < 0:
            raise ValueError("topk must be >= 0 (0: the full distribution)")

    def key(self) -> str:
        """Hash of the request kind and content (model identity is added by the engine)."""
        parts = [self.kind, _sha(self.text), _sha(self.context)]
        return _sha(json.dumps([*parts, int(self.topk)] if self.topk else parts))


@dataclass(frozen=True)
class TokenCountsRequest:
    """Occurrences of every token id of a model's tokenizer over a reference corpus.

    ``corpus`` is a file path, or None for the engine's default (bundled) reference corpus.
    """

    kind: ClassVar[str] = "token_counts"
    version: ClassVar[int] = 1
    corpus: str | None = None
    model: str | None = None

    def key(self) -> str:
        return _sha(json.dumps([self.kind, asdict(self)]))


@dataclass(frozen=True)
class TokenLengthRequest:
    """How many tokens the model's tokenizer makes of ``text`` (special tokens it adds by default included):
    tokenizer only, no forward pass. The run's long-text and one-token warnings read it."""

    kind: ClassVar[str] = "token_length"
    version: ClassVar[int] = 1
    text: str
    model: str | None = None

    def key(self) -> str:
        return _sha(json.dumps([self.kind, _sha(self.text)]))


@dataclass(frozen=True)
class GradNormRequest:
    """Norms (L1, L2, max) of the gradient of the text's mean token NLL w.r.t. each parameter tensor."""

    kind: ClassVar[str] = "grad_norms"
    version: ClassVar[int] = 1
    text: str
    model: str | None = None

    def key(self) -> str:
        return _sha(json.dumps([self.kind, _sha(self.text)]))


@dataclass(frozen=True)
class NoisyLossRequest:
    """Mean token NLL of the text under ``n`` Gaussian perturbations (std ``sigma``) of its input embeddings."""

    kind: ClassVar[str] = "noisy_loss"
    version: ClassVar[int] = 1
    text: str
    sigma: float
    n: int
    seed: int = 0
    model: str | None = None

    def key(self) -> str:
        return _sha(json.dumps([self.kind, _sha(self.text), float(self.sigma), int(self.n), int(self.seed)]))


@dataclass(frozen=True)
class HiddenStatesRequest:
    """Per layer (embeddings first), the mean hidden state over the text's tokens: [layers + 1, width]."""

    kind: ClassVar[str] = "hidden_means"
    version: ClassVar[int] = 1
    text: str
    model: str | None = None

    def key(self) -> str:
        return _sha(json.dumps([self.kind, _sha(self.text)]))


@dataclass(frozen=True)
class NeighboursRequest:
    """``n`` neighbours of the text proposed by the masked LM ``mlm`` (one token replaced each)."""

    kind: ClassVar[str] = "neighbours"
    version: ClassVar[int] = 1
    text: str
    mlm: str
    n: int
    top_k: int = 10
    dropout: float = 0.7
    seed: int = 0
    model: str | None = None  # grouping only: neighbours come from the masked LM, not a causal target

    def key(self) -> str:
        parts = [self.kind, _sha(self.text), int(self.n), int(self.top_k), float(self.dropout), int(self.seed)]
        return _sha(json.dumps(parts))


@dataclass(frozen=True)
class GenerationRequest:
    """``n`` continuations of ``prompt``: greedy when ``temperature`` is 0, else sampled at that temperature after
    top-k (0 = off) and nucleus (``top_p``) filtering, at most ``max_new_tokens`` tokens each, stopped at EOS.

    Sampling is seeded per request and continuation (``seed``), so a rerun reproduces the same texts and they
    can be stored; greedy requests ignore the seed.
    """

    kind: ClassVar[str] = "generation"
    version: ClassVar[int] = GENERATION_VERSION
    prompt: str
    n: int = 1
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    max_new_tokens: int = 32
    seed: int = 0
    model: str | None = None

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError("a generation request needs n >= 1 and max_new_tokens >= 1")
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature and top_k must be >= 0 and top_p in (0, 1]")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def key(self) -> str:
        sampling = (
            [0.0, 0, 1.0, 0]
            if self.greedy
            else [float(self.temperature), int(self.top_k), float(self.top_p), int(self.seed)]
        )
        return _sha(json.dumps([self.kind, _sha(self.prompt), int(self.n), int(self.max_new_tokens), *sampling]))


@dataclass(frozen=True)
class NextTokensRequest:
    """The greedy next token after every prefix of ``text`` (one causal pass; see ``signals.next_tokens``).

    ``model`` None means the audit target; otherwise a causal model known to the engine (a surrogate). Texts
    longer than the model's context use their first ``max_length`` tokens.
    """

    kind: ClassVar[str] = "next_tokens"
    version: ClassVar[int] = NEXT_TOKENS_VERSION
    text: str
    model: str | None = None

    def key(self) -> str:
        return _sha(json.dumps([self.kind, _sha(self.text)]))


@dataclass(frozen=True)
class EmbeddingRequest:
    """The sentence embedding of ``text`` by the sentence-transformers model ``embedder`` (a directory or hub id),
    as its pipeline gives it (L2-normalised: a dot product is the cosine similarity)."""

    kind: ClassVar[str] = "embedding"
    version: ClassVar[int] = 1
    text: str
    embedder: str
    model: str | None = None  # grouping only: embeddings come from the embedder, not a causal target

    def key(self) -> str:
        return _sha(json.dumps([self.kind, _sha(self.text)]))


ArrayRequest = GradNormRequest | NoisyLossRequest | HiddenStatesRequest
Request = (
    TokenStatsRequest
    | TokenCountsRequest
    | TokenLengthRequest
    | ArrayRequest
    | NeighboursRequest
    | GenerationRequest
    | NextTokensRequest
    | EmbeddingRequest
)
