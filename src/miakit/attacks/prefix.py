"""Prefix conditioning: how much a text's likelihood moves when known non-members (or members) precede it.

ReCaLL (Xie et al., EMNLP 2024) and Con-ReCall (Wang et al. 2024). Prefix texts come only from the calibration
set, which is never scored; the engine encodes a prefix shared by many texts once and reuses its key/value
cache.

A prefix holds only the shots that fit whole in the target's context beside a text of the calibration texts'
median token length: ``fit`` counts the tokens of every candidate prefix (tokenizer only) and keeps the most
shots that fit, at least one. How many fitted is a warning of the run and a number in its manifest. A text
longer than that median still sees the prefix cut from the left by the engine, as before.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import Attack, MissingPrerequisite, check_count, plain_logprobs, plain_mean, require
from miakit.attacks.likelihood import mean_ll
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.signals import TokenStatsRequest
from miakit.signals.requests import TokenLengthRequest
from miakit.targets.capability import Capability

# Shots are joined, and the text follows the prefix, after one space (as in the SoK benchmark's ReCaLL).
SEPARATOR = " "
KINDS = {0: "non-members", 1: "members"}


def _pool(samples: Sequence[Sample], label: int) -> list[Sample]:
    return [s for s in samples if s.label == label]


def _lacking(samples: Sequence[Sample], labels: Sequence[int], who: str) -> str | None:
    """Why ``samples`` cannot give ``who`` its prefixes (no calibration sample of a needed label), or None."""
    for label in labels:
        if not _pool(samples, label):
            return f"{who} needs calibration {KINDS[label]} for its prefix; the calibration set has none."
    return None


def _draw_shots(samples: Sequence[Sample], label: int, n_shots: int, seed: int, who: str) -> list[Sample]:
    problem = _lacking(samples, [label], who)
    if problem:
        raise MissingPrerequisite(problem)
    pool = _pool(samples, label)
    return random.Random(seed).sample(pool, min(n_shots, len(pool)))


def _prefixes(shots: Sequence[Sample]) -> list[str]:
    """The candidate prefixes: the first 1, 2, ... shots joined."""
    return [SEPARATOR.join(s.text for s in shots[:k]) for k in range(1, len(shots) + 1)]


def _describe(shots: Sequence[Sample], kind: str) -> str:
    ids = ", ".join(s.id for s in shots[:5]) + (", ..." if len(shots) > 5 else "")
    return f"prefix of {len(shots)} calibration {kind} ({ids})"


class _PrefixAttack(Attack):
    family = "prefix conditioning"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    stages = ("pre-training", "fine-tuning")
    needs_calibration = True
    shot_labels: ClassVar[tuple[int, ...]] = (0,)  # calibration labels the prefixes are drawn from

    def calibration_problem(self, samples: Sequence[Sample]) -> str | None:
        return _lacking(samples, self.shot_labels, self.name)

    def _draw(self, samples: Sequence[Sample]) -> list[list[Sample]]:
        """The drawn shots of each prefix (one list per label in ``shot_labels``), before fitting to the context."""
        self.check_params()
        return [_draw_shots(samples, label, self.n_shots, self.seed, self.name) for label in self.shot_labels]

    def calibration_requests(self, samples: Sequence[Sample]) -> list[Any]:
        """Token counts of every candidate prefix and of the calibration texts (tokenizer only), when the runner
        has told the target's context."""
        facts = self.facts(None)
        if facts is None or facts.max_length < 2:
            return []
        texts = [p for shots in self._draw(samples) for p in _prefixes(shots)] + [s.text for s in samples]
        return [TokenLengthRequest(t) for t in texts]

    def _fit_shots(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> list[list[Sample]]:
        """The drawn shots cut to the most that fit whole in the context beside a text of median length (the same
        count for every prefix, at least one); records what was done for ``notes`` and ``fitted_details``."""
        drawn = self._draw(samples)
        n_drawn = min(len(shots) for shots in drawn)
        facts = self.facts(None)
        requests = [TokenLengthRequest(t) for shots in drawn for t in _prefixes(shots)]
        requests += [TokenLengthRequest(s.text) for s in samples]
        self.fit_report_: dict[str, Any] = {"shots_requested": self.n_shots, "shots_drawn": n_drawn}
        if facts is None or facts.max_length < 2 or not all(r in signals for r in requests):
            # not run by the runner, or no context length known: every drawn shot, as the engine cuts them
            self.fit_report_["shots"] = n_drawn
            return [shots[:n_drawn] for shots in drawn]
        window = facts.max_length - (1 if facts.prepend_bos else 0)
        room = int(statistics.median_high(signals[TokenLengthRequest(s.text)] for s in samples))
        fit = n_drawn
        for shots in drawn:
            lengths = [signals[TokenLengthRequest(p)] for p in _prefixes(shots)]
            fit = min(fit, sum(1 for n in lengths if n + room <= window))  # lengths grow with k
        used = max(1, fit)
        self.fit_report_.update(shots=used, shots_fit_whole=fit, context=facts.max_length, text_room=room)
        return [shots[:used] for shots in drawn]

    def notes(self) -> list[str]:
        report = getattr(self, "fit_report_", None)
        if not report:
            return []
        requested, drawn, used = report["shots_requested"], report["shots_drawn"], report["shots"]
        out = []
        if drawn < requested:
            kinds = " and ".join(KINDS[label] for label in self.shot_labels)
            out.append(f"{drawn} of {requested} prefix shots drawn: the calibration set has no more {kinds}")
        if "context" in report and report["shots_fit_whole"] < drawn:
            room, context = report["text_room"], report["context"]
            if report["shots_fit_whole"] == 0:
                out.append(
                    f"0 of {requested} prefix shots fit whole in the {context}-token context beside a {room}-token "
                    "text (the calibration texts' median length): the prefix is one shot, cut from the left to fit"
                )
            else:
                out.append(
                    f"{used} of {requested} prefix shots fit in the {context}-token context (leaving room for a "
                    f"{room}-token text, the calibration texts' median length; longer texts see the prefix cut "
                    "from the left)"
                )
        return out

    def fitted_details(self) -> dict[str, Any] | None:
        return dict(self.fit_report_) if getattr(self, "fit_report_", None) else None

    def _prefix(self, attr: str) -> str:
        value = getattr(self, attr, None)
        if value is None:
            raise MiakitError(f"{self.name} must be fitted on a calibration set before scoring.")
        return value

    @staticmethod
    def _conditional(signals: Mapping[Any, Any], text: str, prefix: str) -> float:
        return mean_ll(signals[TokenStatsRequest(text, context=prefix + SEPARATOR)])

    @staticmethod
    def _plain_ll(signals: Mapping[Any, Any], text: str, context: str = "") -> float:
        return plain_mean(plain_logprobs(signals[TokenStatsRequest(text, context=context)]))


@register("recall")
class ReCaLL(_PrefixAttack):
    """s = LL(x | P) / LL(x), P = ``n_shots`` calibration non-members; non-member context costs members more."""

    paper = "Xie et al., EMNLP 2024 (arXiv 2406.15968)"
    summary = "LL(x | prefix of known non-members) / LL(x); prefix from the calibration set"
    table_score = "LL(x | P) / LL(x), P = `n_shots` ({n_shots}) calibration non-members; needs calibration"
    cite = "Xie et al., EMNLP 2024"
    order = 10

    def __init__(self, n_shots: int = 10, seed: int = 0) -> None:
        self.n_shots = n_shots
        self.seed = seed

    def check_params(self) -> None:
        check_count(self, "n_shots")

    def fit(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> ReCaLL:
        (self.shots_,) = self._fit_shots(samples, signals)
        self.prefix_ = SEPARATOR.join(s.text for s in self.shots_)
        return self

    def fitted_on(self) -> str | None:
        shots = getattr(self, "shots_", None)
        return _describe(shots, "non-members") if shots else None

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        prefix = self._prefix("prefix_")
        return [r for s in samples for r in (TokenStatsRequest(s.text), TokenStatsRequest(s.text, prefix + SEPARATOR))]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        prefix = self._prefix("prefix_")
        return np.array(
            [self._conditional(signals, s.text, prefix) / mean_ll(signals[TokenStatsRequest(s.text)]) for s in samples]
        )

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        prefix = " ".join(shot.text for shot in self.shots_)
        return self._plain_ll(signals, sample.text, prefix + " ") / self._plain_ll(signals, sample.text)


@register("con_recall")
class ConReCall(_PrefixAttack):
    """s = [LL(x | P_nm) - gamma LL(x | P_m)] / LL(x), prefixes of calibration non-members and members."""

    paper = "Wang et al. 2024 (arXiv 2409.03363)"
    summary = "[LL(x | non-member prefix) - gamma LL(x | member prefix)] / LL(x); prefixes from calibration"
    table_score = "[LL(x | P_nm) − γ·LL(x | P_m)] / LL(x), γ = {gamma}, {n_shots}-shot prefixes from calibration"
    cite = "Wang et al. 2024"
    order = 11
    shot_labels: ClassVar[tuple[int, ...]] = (0, 1)
    tags: ClassVar[dict[str, str]] = {
        "weak_on_tiny_models": (
            "it needs a model whose likelihood of a member rises in the context of other members; a 2-layer model "
            "with a 128-token context (prefixes cut to fit) shows little of that (measured AUROC 0.536, below the "
            "permutation threshold 0.63)"
        ),
        "planted_cannot_express": (
            "the planted model memorises exact sequences from position 0, so any prefix hides the memorisation "
            "alike for both prefixes; its orientation is pinned on signals in tests/attacks/test_prefix.py"
        ),
    }

    def __init__(self, n_shots: int = 10, gamma: float = 1.0, seed: int = 0) -> None:
        self.n_shots = n_shots
        self.gamma = gamma
        self.seed = seed

    def check_params(self) -> None:
        check_count(self, "n_shots")
        require(self, isinstance(self.gamma, (int, float)), f"gamma must be a number, got {self.gamma}")

    def fit(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> ConReCall:
        self.nonmember_shots_, self.member_shots_ = self._fit_shots(samples, signals)
        self.nonmember_prefix_ = SEPARATOR.join(s.text for s in self.nonmember_shots_)
        self.member_prefix_ = SEPARATOR.join(s.text for s in self.member_shots_)
        return self

    def fitted_on(self) -> str | None:
        if not hasattr(self, "member_shots_"):
            return None
        return f"{_describe(self.nonmember_shots_, 'non-members')}; {_describe(self.member_shots_, 'members')}"

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        nm, m = self._prefix("nonmember_prefix_"), self._prefix("member_prefix_")
        return [
            r
            for s in samples
            for r in (
                TokenStatsRequest(s.text),
                TokenStatsRequest(s.text, nm + SEPARATOR),
                TokenStatsRequest(s.text, m + SEPARATOR),
            )
        ]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        nm, m = self._prefix("nonmember_prefix_"), self._prefix("member_prefix_")
        out = []
        for s in samples:
            ll = mean_ll(signals[TokenStatsRequest(s.text)])
            out.append(
                (self._conditional(signals, s.text, nm) - self.gamma * self._conditional(signals, s.text, m)) / ll
            )
        return np.array(out)

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        nonmember_prefix = " ".join(shot.text for shot in self.nonmember_shots_) + " "
        member_prefix = " ".join(shot.text for shot in self.member_shots_) + " "
        conditional = self._plain_ll(signals, sample.text, nonmember_prefix)
        conditional -= self.gamma * self._plain_ll(signals, sample.text, member_prefix)
        return conditional / self._plain_ll(signals, sample.text)
