"""Attack specifications as users write them: ``min_k``, ``min_k[k=0.1]``, sweeps ``min_k[k=0.1,0.2]``."""

from __future__ import annotations

import difflib
import inspect
import itertools
import re
from collections.abc import Sequence
from typing import Any

from miakit.attacks.base import Attack, _same, format_value
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
    """A parameter value as written: inf, true/false, an integer, a float, else the text itself."""
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


def closest(name: str, choices: Sequence[str]) -> str | None:
    """The choice a misspelled ``name`` most likely meant (case-insensitive), or None when none is close."""
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def parameters_text(cls: type[Attack]) -> str:
    """``k=0.2, tau=2``: an attack's hyper-parameters with their defaults, as a user writes them in a spec."""
    shown = []
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        shown.append(name if p.default is inspect.Parameter.empty else f"{name}={format_value(p.default)}")
    return ", ".join(shown) if shown else "none"


def _check_names(cls: type[Attack], spec: str, given: Sequence[str]) -> None:
    """Unknown parameter names are a user error that names the valid ones (with defaults) and the closest."""
    valid = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    for key in given:
        if key not in valid:
            guess = closest(key, valid)
            hint = f"; did you mean '{guess}'?" if guess else "."
            raise MiakitError(
                f"Attack '{cls.name}' has no parameter '{key}' ({spec}){hint} "
                f"Its parameters (defaults): {parameters_text(cls)}."
            )


def attack_class(name: str) -> type[Attack]:
    """The registered attack called ``name``; an unknown name is a user error with the closest known name."""
    if name in ATTACKS:
        return ATTACKS[name]
    guess = closest(name, list(ATTACKS))
    hint = f"; did you mean '{guess}'?" if guess else "."
    raise MiakitError(f"Unknown attack '{name}'{hint} Known attacks: {', '.join(sorted(ATTACKS))}.")


def build_attacks(spec: str, *, check: bool = True) -> list[Attack]:
    """One attack instance per combination of the listed values, each validated by ``check_params`` unless
    ``check`` is False (the planner fills ``model_param`` first, then checks)."""
    match = SPEC.match(spec)
    if not match:
        raise MiakitError(f"Cannot read attack '{spec}': write name or name[param=value,...].")
    name, body = match.group(1), match.group(2) or ""
    cls = attack_class(name)
    params = parse_params(body)
    _check_names(cls, spec, list(params))
    keys = list(params)
    attacks = []
    for combo in itertools.product(*(params[k] for k in keys)):
        kwargs = dict(zip(keys, combo, strict=True))
        try:
            attack = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise MiakitError(
                f"Bad parameters for attack '{name}' ({spec}): {exc}. Its parameters (defaults): "
                f"{parameters_text(cls)}."
            ) from exc
        if check:
            attack.check_params()
        attacks.append(attack)
    return attacks


def column_names(attacks: Sequence[Attack], hidden: Sequence[str | None] = ()) -> list[str]:
    """The score column of each attack: its name plus its non-default parameters, and where one attack appears
    more than once in a run, also every parameter that differs between its instances, defaults included
    (``max_renyi[alpha=0.5]`` next to ``max_renyi[alpha=1]``, never a bare ``max_renyi`` that hides its value).
    ``hidden[i]`` names a parameter left out of attack i's column (a reference model filled in by the planner)."""
    hide = list(hidden) + [None] * (len(attacks) - len(hidden))
    params = [a.get_params() for a in attacks]
    varying: dict[str, set[str]] = {}
    for attack, values in zip(attacks, params, strict=True):
        for other, other_values in zip(attacks, params, strict=True):
            if other.name == attack.name:
                keys = varying.setdefault(attack.name, set())
                keys.update(k for k in values if k in other_values and not _same(values[k], other_values[k]))
    names = []
    for attack, values, skip in zip(attacks, params, hide, strict=True):
        shown = set(attack.non_default_params()) | varying.get(attack.name, set())
        items = [(k, v) for k, v in values.items() if k in shown and k != skip]
        names.append(attack.name + (f"[{','.join(f'{k}={format_value(v)}' for k, v in items)}]" if items else ""))
    return names
