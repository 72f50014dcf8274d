"""Attacks: the base contract, the registry, and one module per family.

Every module of this package is imported here, so its ``@register``-ed classes join the registry: a new attack
is one new file.
"""

import importlib
import pkgutil

from miakit.attacks.base import Attack, TokenStatsAttack
from miakit.attacks.registry import ATTACKS, attack_table_markdown, ordered_names, register
from miakit.attacks.spec import build_attacks, split_specs

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ATTACKS",
    "Attack",
    "TokenStatsAttack",
    "attack_table_markdown",
    "build_attacks",
    "ordered_names",
    "register",
    "split_specs",
]
