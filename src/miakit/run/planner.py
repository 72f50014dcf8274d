"""The planner stage: attack specs to attack instances (one per score column) and the reasons for those skipped.

Everything attack-specific comes from the attack classes: ``default_sweep`` and ``order`` say what ``all``
expands to, ``model_param`` names the parameter filled from ``--reference``, ``requires`` and
``needs_calibration`` say when an attack cannot run, ``check_params`` validates hyper-parameters before any
model loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from miakit.attacks import ATTACKS, Attack
from miakit.attacks.approx import TopKApproximable
from miakit.attacks.registry import ordered_names
from miakit.attacks.spec import build_attacks, column_names
from miakit.data import Sample
from miakit.targets.capability import Capability


@dataclass
class Plan:
    """Column name -> attack instance, in display order, and column -> reason for every skipped attack."""

    attacks: dict[str, Attack] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def models(self) -> list[str]:
        """Extra causal-LM targets (reference models) the planned attacks read, in first-use order."""
        return list(dict.fromkeys(m for attack in self.attacks.values() for m in attack.models()))


def default_attack_specs() -> list[str]:
    """What 'all' means: every attack in ``all`` by its ``order``, with its ``default_sweep`` where it has one."""
    names = ordered_names(n for n, cls in ATTACKS.items() if cls.in_all)
    return [f"{n}[{ATTACKS[n].default_sweep}]" if ATTACKS[n].default_sweep else n for n in names]


def expand_specs(specs: Sequence[str]) -> list[str]:
    """The specs with 'all' replaced by ``default_attack_specs()``."""
    out: list[str] = []
    for spec in specs:
        out.extend(default_attack_specs() if spec.strip() == "all" else [spec.strip()])
    return out


def check_attack_specs(specs: Sequence[str]) -> None:
    """Read every attack spec (names, parameter names, values) before any data or model loads, so that a
    misspelt attack is the first thing a user hears of; the plan checks the rest once the target is known."""
    for spec in expand_specs(specs):
        build_attacks(spec, check=False)


def plan_attacks(
    specs: Sequence[str],
    references: Sequence[str],
    capabilities: frozenset,
    *,
    calibration: bool | Sequence[Sample] = False,
) -> Plan:
    """Attack instances for ``specs`` (sweeps expanded, 'all' as ``default_attack_specs``), skipping those the
    target cannot serve, that need a calibration set the run does not have, or whose prerequisites the given
    calibration samples lack (e.g. members for Con-ReCall); a parameter error is raised."""
    plan = Plan()
    entries: list[tuple[Attack, str | None, str | None]] = []
    for spec in expand_specs(specs):
        instances = build_attacks(spec, check=False)
        cls = type(instances[0])
        hidden = None
        if cls.model_param and all(getattr(a, cls.model_param) is None for a in instances):
            if not references:
                plan.skipped[cls.name] = "needs a reference model: pass --reference MODEL (e.g. the base model)"
                continue
            instances = [a.with_params(**{cls.model_param: r}) for a in instances for r in references]
            hidden = cls.model_param if len(references) == 1 else None
        for attack in instances:
            attack.check_params()
            entries.append((attack, hidden, _skip_reason(attack, capabilities, calibration)))
    # named over the whole run: an attack that appears more than once shows its varying values, defaults too
    names = column_names([a for a, _, _ in entries], [h for _, h, _ in entries])
    for column, (attack, _, reason) in zip(names, entries, strict=True):
        if reason:
            plan.skipped[column] = reason
        else:
            plan.attacks.setdefault(column, attack)
    return plan


def _skip_reason(attack: Attack, capabilities: frozenset, calibration: bool | Sequence[Sample]) -> str | None:
    """Why the run cannot serve ``attack`` (a capability, the calibration set or what it lacks), or None."""
    missing = attack.needs() - capabilities
    if missing:
        reason = "target lacks " + ", ".join(sorted(c.value for c in missing))
        if isinstance(attack, TopKApproximable) and Capability.TOPK_LOGPROBS in capabilities:
            reason += f"; {attack.name}[approx=topk] runs it on the top-k log-probs as a declared approximation"
        return reason
    if not attack.needs_calibration:
        return None
    if not (calibration if isinstance(calibration, bool) else len(calibration)):
        return "needs a calibration set: pass --calibration FILE or --calibration-fraction F"
    return None if isinstance(calibration, bool) else attack.calibration_problem(calibration)
