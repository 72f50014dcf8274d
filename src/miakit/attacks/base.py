"""The Attack contract and its registry.

Hyper-parameters are keyword arguments of ``__init__`` and nothing else (scikit-learn's rule); learned state
ends in an underscore. ``requests`` says what signals an attack needs; ``score`` turns them into one float
per sample, higher = more likely member, always. Attacks never call a model.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.data import Sample
from miakit.signals import TokenStats, TokenStatsRequest
from miakit.targets.capability import Capability

ATTACKS: dict[str, type[Attack]] = {}


class Attack:
    """Base class of every membership inference attack."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    requires: ClassVar[frozenset[Capability]] = frozenset()
    stages: ClassVar[tuple[str, ...]] = ("pre-training", "fine-tuning")
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # Fits on known samples: runs only with a calibration set (--calibration or --calibration-fraction).
    needs_calibration: ClassVar[bool] = False
    # Part of 'all': False for attacks costing many model passes per text (named explicitly instead).
    in_all: ClassVar[bool] = True

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters, read back from the attributes named like ``__init__``'s arguments."""
        return {p: getattr(self, p) for p in _init_params(type(self))}

    def non_default_params(self) -> dict[str, Any]:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items() if name != "self"
        }
        out = {}
        for key, value in self.get_params().items():
            default = defaults.get(key, inspect.Parameter.empty)
            if default is inspect.Parameter.empty or not _same(value, default):
                out[key] = value
        return out

    def column_name(self) -> str:
        """Registry name plus non-default hyper-parameters, e.g. ``min_k[k=0.1]``."""
        params = self.non_default_params()
        if not params:
            return self.name
        return f"{self.name}[{','.join(f'{k}={format_value(v)}' for k, v in params.items())}]"

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        raise NotImplementedError

    def more_requests(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> list[Any]:
        """Requests that depend on earlier signals (e.g. the token statistics of generated neighbours); the
        runner calls this after each engine round until it returns nothing new."""
        return []

    def calibration_requests(self, samples: Sequence[Sample]) -> list[Any]:
        """Signals ``fit`` needs for the calibration samples (none for most attacks)."""
        return []

    def fit(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> Attack:
        """Learn from calibration samples; most attacks learn nothing."""
        return self

    def fitted_on(self) -> str | None:
        """What the attack learnt from the calibration set, in words, for the report (None: nothing)."""
        return None

    def fitted_details(self) -> dict[str, Any] | None:
        """Numbers behind ``fitted_on`` for results.json (e.g. a probe's per-layer AUROC), or None."""
        return None

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


class TokenStatsAttack(Attack):
    """An attack that reduces the target's token statistics of each text to one number."""

    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.TOPK_LOGPROBS})

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [TokenStatsRequest(s.text) for s in samples]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.empty(len(samples), dtype=np.float64)
        for i, s in enumerate(samples):
            stats = signals[TokenStatsRequest(s.text)]
            out[i] = self.statistic(stats, s) if len(stats) else np.nan
        return out

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        raise NotImplementedError


def register(name: str):
    """Class decorator adding an attack to the registry under ``name``."""

    def wrap(cls: type[Attack]) -> type[Attack]:
        if name in ATTACKS and ATTACKS[name] is not cls:
            raise ValueError(f"attack name '{name}' registered twice")
        cls.name = name
        ATTACKS[name] = cls
        return cls

    return wrap


def lowest_count(n: int, k: float) -> int:
    """Size of "the lowest k% of n values": max(1, floor(k * n)), guarding very short texts."""
    return max(1, int(k * n))


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer():
            return str(int(value))
        return f"{value:g}"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def _init_params(cls: type) -> list[str]:
    return [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
