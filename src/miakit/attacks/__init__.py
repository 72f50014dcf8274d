"""Attacks: the base contract, the registry, and one module per family."""

from miakit.attacks import (  # noqa: F401  (registration)
    entropy,
    frequency,
    gradient,
    likelihood,
    min_k,
    perturbation,
    prefix,
    probe,
    reference,
)
from miakit.attacks.base import ATTACKS, Attack, TokenStatsAttack, register
from miakit.attacks.spec import build_attacks, split_specs

__all__ = ["ATTACKS", "Attack", "TokenStatsAttack", "build_attacks", "register", "split_specs"]
