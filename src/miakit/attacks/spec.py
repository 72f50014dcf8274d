"""Attack specifications as users write them: ``min_k``, ``min_k[k=0.1]``, sweeps ``min_k[k=0.1,0.2]``."""

from __future__ import annotations

import itertools
import re
from typing import Any

from miakit.attacks.base import Attack
from miakit.attacks.registry import ATTACKS
from miakit.errors import MiakitError

SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(.*)\])?\s*$", re.S)


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs, keeping commas inside brackets."""
    out, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return [s.strip() for s in out if s.strip()]


def parse_value(text: str) -> Any:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("inf", "+inf", "infinity"):
        return float("inf")
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_params(body: str) -> dict[str, list[Any]]:
    """``k=0.1,0.2,tau=2`` -> {"k": [0.1, 0.2], "tau": [2]}: bare values extend the previous key's list."""
    params: dict[str, list[Any]] = {}
    last = None
    for token in (t.strip() for t in body.split(",")):
        if not token:
            continue
        if "=" in token:
            key, value = token.split("=", 1)
            last = key.strip()
            params.setdefault(last, []).append(parse_value(value))
        elif last is None:
            raise MiakitError(f"Cannot read '{body}': write parameters as name=value, e.g. min_k[k=0.1].")
        else:
            params[last].append(parse_value(token))
    return params


def build_attacks(spec: str, *, check: bool = True) -> list[Attack]:
    """One attack instance per combination of the listed values, each validated by ``check_params`` unless
    ``check`` is False (the planner fills ``model_param`` first, then checks)."""
    match = SPEC.match(spec)
    if not match:
        raise MiakitError(f"Cannot read attack '{spec}': write name or name[param=value,...].")
    name, body = match.group(1), match.group(2) or ""
    if name not in ATTACKS:
        raise MiakitError(f"Unknown attack '{name}'. Known attacks: {', '.join(sorted(ATTACKS))}.")
    params = parse_params(body)
    keys = list(params)
    attacks = []
    for combo in itertools.product(*(params[k] for k in keys)):
        kwargs = dict(zip(keys, combo, strict=True))
        try:
            attack = ATTACKS[name](**kwargs)
        except (TypeError, ValueError) as exc:
            raise MiakitError(f"Bad parameters for attack '{name}' ({spec}): {exc}.") from exc
        if check:
            attack.check_params()
        attacks.append(attack)
    return attacks
