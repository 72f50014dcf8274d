"""The Attack contract.

Hyper-parameters are keyword arguments of ``__init__`` and nothing else (scikit-learn's rule); learned state
ends in an underscore. ``requests`` says what signals an attack needs; ``score`` turns them into one float
per sample, higher = more likely member, always. Attacks never call a model. What orchestration needs to know
about an attack (default sweep, order, extra models, score hints, parameter checks) is declared on its class.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.signals import TokenStats, TokenStatsRequest
from miakit.targets.capability import Capability

# Exemptions an attack may declare in ``tags`` (tag -> reason), and what each exempts in check_attack.
CHECK_TAGS = {
    "weak_on_tiny_models": "orientation on the trained tiny target is not checked",
    "planted_cannot_express": "orientation on the planted-memorisation target is not checked",
    "reads_all_tokens": "a one-token text must score finite (it is not unscorable)",
}


class MissingPrerequisite(MiakitError):
    """This run's data cannot serve an attack (e.g. a calibration set without members): the runner skips the
    attack with this message as its reason and the rest of the run goes on; called directly, it is an error."""


@dataclass(frozen=True)
class ModelFacts:
    """What an attack may know of a model it reads, never the model itself: its context and tokenizer identity."""

    max_length: int  # tokens per window
    tokenizer_fingerprint: str
    prepend_bos: bool = False  # the engine puts a BOS token before every text (one token of the window)


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
    # The parameter sweep 'all' runs, in spec-body syntax (e.g. "alpha=0.5,1,2,inf"); "" runs the defaults.
    default_sweep: ClassVar[str] = ""
    # Display and planning order within 'all' (ties sort by name).
    order: ClassVar[int] = 100
    # The __init__ parameter naming an extra causal-LM target the attack reads; the planner fills it from
    # --reference when a spec leaves it out.
    model_param: ClassVar[str | None] = None
    # The __init__ parameter naming a masked LM the attack reads (check_attack fills it with its tiny one).
    mlm_param: ClassVar[str | None] = None
    # The __init__ parameter naming a sentence-transformers embedder (check_attack fills it with its tiny one).
    embedder_param: ClassVar[str | None] = None
    # check_attack exemptions: tag (a key of CHECK_TAGS) -> why this attack cannot meet that check.
    tags: ClassVar[dict[str, str]] = {}
    # Hyper-parameters check_attack uses on its tiny world (a 2-layer GPT-2), where the defaults may not fit.
    tiny_world_params: ClassVar[dict[str, Any]] = {}
    # README table: the score cell ({param} is replaced by that parameter's default; "" uses ``summary``) and
    # a short citation ("" uses ``paper``).
    table_score: ClassVar[str] = ""
    cite: ClassVar[str] = ""

    def check_params(self) -> None:
        """Validate the hyper-parameters (raising MiakitError); the planner calls it before any model loads."""

    def needs(self) -> frozenset[Capability]:
        """What this instance needs of the target: ``requires``, unless its parameters ask for less (a
        full-distribution attack run as a top-k approximation)."""
        return self.requires

    def models(self) -> tuple[str, ...]:
        """The extra causal-LM targets this instance reads (the value of ``model_param``, if set)."""
        value = getattr(self, self.model_param, None) if self.model_param else None
        return (value,) if value is not None else ()

    def score_hint(self, scores: np.ndarray, peers: Sequence[Attack] = ()) -> str | None:
        """A sentence appended to the run's warning when some scores are infinite or NaN (None: nothing to add);
        ``peers``: the run's other instances of this attack (a hint suggests no setting already in use)."""
        return None

    def observe(self, models: Mapping[str | None, ModelFacts]) -> None:
        """Note the facts of the models the run reads (None: the target) before fitting or scoring; the runner
        calls it. Attacks that adapt to a context length or a tokenizer keep what they need (ending in '_')."""
        self.model_facts_ = dict(models)

    def facts(self, model: str | None = None) -> ModelFacts | None:
        """The observed facts of ``model`` (None: the target), or None when the runner has not told them."""
        return getattr(self, "model_facts_", {}).get(model)

    def notes(self) -> list[str]:
        """Sentences for the run's warnings on how this attack adapted to the run (e.g. the prefix shots that fit
        the context); the runner prefixes each with the column name."""
        return []

    def calibration_problem(self, samples: Sequence[Sample]) -> str | None:
        """Why these calibration samples cannot fit this attack (e.g. it needs members and there are none), or
        None; the runner checks it before computing any signal and skips the attack with this reason."""
        return None

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        """The score of one sample in plain float64 Python/numpy, written independently of ``score``:
        check_attack compares the two."""
        raise NotImplementedError

    def with_params(self, **changes: Any) -> Attack:
        """A new, unfitted instance with some hyper-parameters changed (e.g. the planner filling ``model_param``)."""
        return type(self)(**{**self.get_params(), **changes})

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

    def stats_request(self, text: str) -> TokenStatsRequest:
        """The token statistics this attack reads for ``text``."""
        return TokenStatsRequest(text)

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [self.stats_request(s.text) for s in samples]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.empty(len(samples), dtype=np.float64)
        for i, s in enumerate(samples):
            stats = signals[self.stats_request(s.text)]
            out[i] = self.statistic(stats, s) if len(stats) else np.nan
        return out

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        raise NotImplementedError


def lowest_count(n: int, k: float) -> int:
    """Size of "the lowest k% of n values": max(1, floor(k * n)), guarding very short texts."""
    return max(1, int(k * n))


def plain_logprobs(stats: TokenStats) -> list[float]:
    """The scored tokens' log-probabilities as Python floats (float64), for reference scores."""
    return [float(x) for x in stats.logprob]


def plain_mean(values: Sequence[float]) -> float:
    """Exactly rounded float64 mean (math.fsum), NaN when empty: the reduction reference scores use."""
    return math.fsum(values) / len(values) if len(values) else math.nan


def require(attack: Attack, ok: bool, problem: str) -> None:
    """Raise the one-paragraph error for a bad hyper-parameter unless ``ok``."""
    if not ok:
        raise MiakitError(f"Bad parameters for attack '{attack.name}' ({attack.column_name()}): {problem}.")


def check_fraction(attack: Attack, name: str, *, zero_ok: bool = False) -> None:
    """The hyper-parameter ``name`` is a fraction in (0, 1] ([0, 1] when ``zero_ok``)."""
    value = getattr(attack, name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (0 <= value <= 1 if zero_ok else 0 < value <= 1)
    require(attack, ok, f"{name} must be in {'[0, 1]' if zero_ok else '(0, 1]'}, got {value}")


def check_count(attack: Attack, name: str, minimum: int = 1) -> None:
    """The hyper-parameter ``name`` is an integer of at least ``minimum``."""
    value = getattr(attack, name)
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum
    require(attack, ok, f"{name} must be an integer of at least {minimum}, got {value}")


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
