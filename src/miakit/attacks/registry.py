"""The attack registry: ``@register(name)`` on a class, the display order, and the README's attack table."""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

from miakit.attacks.base import Attack
from miakit.targets.capability import Capability

ATTACKS: dict[str, type[Attack]] = {}

# The access an attack needs, in words, from the strongest capability it requires.
ACCESS_WORDS = (
    (Capability.GRADIENTS, "gradients"),
    (Capability.HIDDEN_STATES, "hidden states"),
    (Capability.EMBEDDINGS_IN, "embeddings"),
    (Capability.FULL_LOGITS, "full logits"),
    (Capability.TOPK_LOGPROBS, "log-probs"),
    (Capability.GENERATION, "generated text"),
)
TABLE_START, TABLE_END = "<!-- attacks:start -->", "<!-- attacks:end -->"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def register(name: str):
    """Class decorator adding an attack to the registry under ``name``."""

    def wrap(cls: type[Attack]) -> type[Attack]:
        if name in ATTACKS and ATTACKS[name] is not cls:
            raise ValueError(f"attack name '{name}' registered twice")
        cls.name = name
        ATTACKS[name] = cls
        return cls

    return wrap


def ordered_names(names: Any = None) -> list[str]:
    """Attack names in display and planning order: ``order``, then name (default: every registered attack)."""
    return sorted(ATTACKS if names is None else names, key=lambda n: (ATTACKS[n].order, n))


def access_words(cls: type[Attack]) -> str:
    """The access an attack needs, in words (e.g. "full logits"), for tables."""
    return next((words for cap, words in ACCESS_WORDS if cap in cls.requires), "text")


def init_defaults(cls: type[Attack]) -> dict[str, Any]:
    """``__init__``'s parameters that have defaults, with them."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in params if p.name != "self" and p.default is not inspect.Parameter.empty}


def score_summary(cls: type[Attack]) -> str:
    """The class's ``table_score`` (or ``summary``) with each ``{param}`` replaced by that parameter's default."""
    defaults = init_defaults(cls)

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in defaults:
            raise ValueError(f"{cls.__name__}.table_score names '{match.group(1)}', not a defaulted parameter")
        return _table_value(defaults[match.group(1)])

    return _PLACEHOLDER.sub(fill, cls.table_score or cls.summary)


def attack_table_markdown() -> str:
    """The README's attack table, rendered from the registered classes (starred = not in ``all``)."""
    lines = ["| name | score | access | paper |", "|---|---|---|---|"]
    for name in ordered_names():
        cls = ATTACKS[name]
        star = "" if cls.in_all else "*"
        cells = (f"`{name}`{star}", score_summary(cls), access_words(cls), cls.cite or cls.paper)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _table_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)
