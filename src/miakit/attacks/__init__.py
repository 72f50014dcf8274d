"""Attacks: the base contract, the registry, and one module per family."""

from miakit.attacks import entropy, frequency, likelihood, min_k, prefix, reference  # noqa: F401  (registration)
from miakit.attacks.base import ATTACKS, Attack, TokenStatsAttack, register
from miakit.attacks.spec import build_attacks, split_specs

__all__ = ["ATTACKS", "Attack", "TokenStatsAttack", "build_attacks", "register", "split_specs"]
