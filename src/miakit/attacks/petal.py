"""PETAL: label-only membership inference from the semantic similarity of greedy next tokens.

He et al., "Towards Label-Only Membership Inference Attack against Pre-trained Large Language Models", USENIX
Security 2025. The target gives only generated text; the attack estimates its token log-probabilities from how
close, in a sentence-embedding space, its greedy next token after every prefix is to the true next token, using
a line fitted on a local surrogate model where both quantities are known.

What this follows, read in the authors' artifact (PETAL-USENIX-Artifacts in bravedog01/mia: ``run.py``,
``.ipynb_checkpoints/utils-checkpoint.py``, ``vectors.py``, ``options.py``):

- Per text, for every position i = 1..n-1 of its tokens (``tokenizer.encode(text)``, special tokens the
  tokenizer adds included), the model greedily generates one token from ``ids[:i]``
  (``generate(max_new_tokens=1, do_sample=False)``); both the generated token and the true token ``ids[i]``
  are decoded on their own (``tokenizer.decode(id)``) and embedded by a sentence-transformers model with
  ``normalize_embeddings=True``; the similarity is ``dot_score`` of the two embeddings, replaced by 1e-16
  when it is <= 0, then its natural log (``calculateTextSimilarity``). miakit takes the greedy tokens of all
  prefixes from one forward pass (the argmax at each position: the same tokens) and embeds each distinct piece
  once.
- On the surrogate (default gpt2-xl there; here the model given by ``--reference`` or ``surrogate=``), the
  same similarities with its own tokenizer and greedy tokens, and its log-probs of the true tokens
  (positions 1..n-1, ``calculatePerplexity``); ``np.polyfit(similarity, logprob, 1)`` gives a slope and an
  intercept for this text (``fitting``).
- The target's estimated log-probs are ``slope * similarity + intercept``; the artifact's ``pred`` is minus
  their mean and its evaluation ranks by ``-pred``; miakit's score (higher = member) is their mean.
- The embedder defaults to the artifact's ``all-MiniLM-L6-v2`` (``options.py``; hub id
  ``sentence-transformers/all-MiniLM-L6-v2``), only the greedy decoding is implemented.

Texts longer than a model's context use their first ``max_length`` tokens (the artifact scores whole short
WikiMIA texts). A text with no predicted position on the target, fewer than two on the surrogate, or whose
surrogate similarities are all equal (no line can be fitted) scores NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import Attack, require
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import EmbeddingRequest, NextTokens, NextTokensRequest, TokenStatsRequest
from miakit.targets.capability import Capability

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


@register("petal")
class Petal(Attack):
    """s = mean_i (a * sim_i + b): sim_i the log embedding similarity of the target's greedy next token and the
    true one; (a, b) the line fitting a surrogate model's log-probs on its own similarities, per text."""

    family = "label-only"
    requires = frozenset({Capability.GENERATION, Capability.TOKEN_IDS})  # prompts are every prefix's token ids
    stages = ("pre-training",)
    paper = "He et al., USENIX Security 2025"
    summary = "mean target log-prob estimated from greedy next tokens' embedding similarity (surrogate: --reference)"
    table_score = (
        "mean of slope · log sim(greedy, true token) + intercept, the line fitted per text on a surrogate "
        "(`--reference`); `petal[embedder=DIR_OR_HUB_ID]`"
    )
    cite = "He et al. 2025"
    in_all = False  # a surrogate model and a sentence embedder
    model_param = "surrogate"
    embedder_param = "embedder"
    tags: ClassVar[dict[str, str]] = {
        "weak_on_tiny_models": "a random tiny sentence embedder gives token pieces nearly equal similarities, so the "
        "estimated log-probs carry little of the target's memorisation (measured AUROC 0.58, threshold 0.62)",
        "planted_cannot_express": "planted memorisation mixes the member token into the distribution; greedy "
        "tokens change only where it overtakes the argmax, and a random tiny embedder blurs the change (AUROC 0.72)",
    }

    def __init__(self, surrogate: str | None = None, embedder: str = DEFAULT_EMBEDDER, floor: float = 1e-16) -> None:
        self.surrogate = surrogate
        self.embedder = embedder
        self.floor = floor

    def check_params(self) -> None:
        require(
            self,
            isinstance(self.surrogate, str) and bool(self.surrogate),
            "it needs a local surrogate model: pass --reference MODEL or write petal[surrogate=DIR_OR_HUB_ID]",
        )
        require(
            self,
            isinstance(self.embedder, str) and bool(self.embedder),
            "embedder must name a sentence-transformers directory or hub id",
        )
        ok = isinstance(self.floor, (int, float)) and not isinstance(self.floor, bool) and 0 < self.floor < 1
        require(self, ok, f"floor must be in (0, 1), got {self.floor}")

    # ---- requests -------------------------------------------------------------------------------------
    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        self.check_params()
        return [
            r
            for s in samples
            for r in (
                NextTokensRequest(s.text),
                NextTokensRequest(s.text, model=self.surrogate),
                TokenStatsRequest(s.text, model=self.surrogate),
            )
        ]

    def more_requests(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> list[Any]:
        """One embedding per distinct piece the next tokens named (they depend on the predicted tokens)."""
        pieces: dict[str, None] = {}
        for s in samples:
            for request in (NextTokensRequest(s.text), NextTokensRequest(s.text, model=self.surrogate)):
                found = signals.get(request)
                if found is not None:
                    pieces.update(dict.fromkeys((*found.true_pieces, *found.predicted_pieces)))
        return [EmbeddingRequest(p, self.embedder) for p in pieces]

    # ---- scoring ----------------------------------------------------------------------------------------
    def _similarities(self, tokens: NextTokens, signals: Mapping[Any, Any]) -> np.ndarray:
        """log of the dot product of the true and predicted pieces' embeddings, ``floor`` where it is <= 0."""
        out = np.empty(len(tokens), dtype=np.float64)
        for j, (true, predicted) in enumerate(zip(tokens.true_pieces, tokens.predicted_pieces, strict=True)):
            a = np.asarray(signals[EmbeddingRequest(true, self.embedder)], dtype=np.float64)
            b = np.asarray(signals[EmbeddingRequest(predicted, self.embedder)], dtype=np.float64)
            dot = float(a @ b)
            out[j] = math.log(dot if dot > 0 else self.floor)
        return out

    def _score_one(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        target = signals[NextTokensRequest(sample.text)]
        surrogate = signals[NextTokensRequest(sample.text, model=self.surrogate)]
        stats = signals[TokenStatsRequest(sample.text, model=self.surrogate)]
        n = min(len(surrogate), len(stats))
        if len(target) < 1 or n < 2:
            return math.nan
        x = self._similarities(surrogate, signals)[:n]
        y = stats.logprob[:n].astype(np.float64)
        if np.ptp(x) == 0:
            return math.nan
        slope, intercept = np.polyfit(x, y, 1)
        return float(np.mean(slope * self._similarities(target, signals) + intercept))

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        return np.array([self._score_one(s, signals) for s in samples], dtype=np.float64)

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        def log_similarities(tokens: NextTokens) -> list[float]:
            out = []
            for true, predicted in zip(tokens.true_pieces, tokens.predicted_pieces, strict=True):
                a = [float(v) for v in signals[EmbeddingRequest(true, self.embedder)]]
                b = [float(v) for v in signals[EmbeddingRequest(predicted, self.embedder)]]
                dot = math.fsum(p * q for p, q in zip(a, b, strict=True))
                out.append(math.log(dot) if dot > 0 else math.log(self.floor))
            return out

        target = signals[NextTokensRequest(sample.text)]
        surrogate = signals[NextTokensRequest(sample.text, model=self.surrogate)]
        logprobs = [float(v) for v in signals[TokenStatsRequest(sample.text, model=self.surrogate)].logprob]
        xs = log_similarities(surrogate)[: len(logprobs)]
        ys = logprobs[: len(xs)]
        if not len(target) or len(xs) < 2 or min(xs) == max(xs):
            return math.nan
        # Least squares by the normal equations, centred: slope = cov(x, y) / var(x).
        mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
        slope = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.fsum(
            (x - mx) ** 2 for x in xs
        )
        intercept = my - slope * mx
        estimated = [slope * x + intercept for x in log_similarities(target)]
        return math.fsum(estimated) / len(estimated)

    def score_hint(self, scores: np.ndarray, peers: Sequence[Attack] = ()) -> str | None:
        return (
            "PETAL scores NaN where a text has fewer than two tokens (after the first) under the surrogate or none "
            "under the target, or where all its surrogate similarities are equal (no line can be fitted)"
        )
