"""The planner reads every per-attack fact from the attack classes: 'all', sweeps, order, reference models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from miakit.attacks import ATTACKS, Attack
from miakit.attacks.registry import register
from miakit.errors import MiakitError
from miakit.run.planner import default_attack_specs, plan_attacks
from miakit.signals import TokenStatsRequest
from miakit.targets.capability import Capability

EVERYTHING = frozenset(Capability)
LOGPROBS = frozenset({Capability.TOPK_LOGPROBS})


def test_all_follows_the_classes_order_and_default_sweeps():
    specs = default_attack_specs()
    names = [s.split("[")[0] for s in specs]
    in_all = [n for n, cls in ATTACKS.items() if cls.in_all]
    assert sorted(names) == sorted(in_all)
    assert names == sorted(names, key=lambda n: (ATTACKS[n].order, n))
    assert "max_renyi[alpha=0.5,1,2,inf]" in specs and ATTACKS["max_renyi"].default_sweep == "alpha=0.5,1,2,inf"
    plan = plan_attacks(["all"], [], EVERYTHING, calibration=True)
    assert [c for c in plan.attacks if c.startswith("max_renyi")] == [
        "max_renyi[alpha=0.5]",
        "max_renyi[alpha=1]",
        "max_renyi[alpha=2]",
        "max_renyi[alpha=inf]",
    ]


def test_reference_models_fill_the_model_parameter():
    one = plan_attacks(["loss", "reference"], ["base"], LOGPROBS)
    assert list(one.attacks) == ["loss", "reference"] and one.models() == ["base"]
    two = plan_attacks(["reference"], ["base-a", "base-b"], LOGPROBS)
    assert list(two.attacks) == ["reference[model=base-a]", "reference[model=base-b]"]
    assert two.models() == ["base-a", "base-b"]
    named = plan_attacks(["reference[model=other]"], ["base"], LOGPROBS)  # a named model is kept as given
    assert list(named.attacks) == ["reference[model=other]"] and named.models() == ["other"]
    none = plan_attacks(["loss", "reference"], [], LOGPROBS)
    assert list(none.attacks) == ["loss"] and "--reference" in none.skipped["reference"]


def test_skip_reasons_and_parameter_errors():
    plan = plan_attacks(["loss", "min_k_pp", "recall"], [], LOGPROBS)
    assert list(plan.attacks) == ["loss"]
    assert plan.skipped["min_k_pp"].startswith("target lacks full_logits; min_k_pp[approx=topk] runs it")
    assert "calibration" in plan.skipped["recall"]
    with pytest.raises(MiakitError, match="neighbourhood\\[mlm="):  # no default masked LM the user never typed
        plan_attacks(["neighbourhood"], [], EVERYTHING)
    with pytest.raises(MiakitError, match="Unknown attack 'nope'"):
        plan_attacks(["nope"], [], EVERYTHING)


@pytest.fixture
def new_attack():
    """An attack defined in one place (its class), as an author would add one."""

    @register("test_double_loss")
    class DoubleLoss(Attack):
        family = "test"
        requires = LOGPROBS
        paper = "none"
        summary = "twice the mean log-likelihood"
        default_sweep = "scale=1,2"
        order = 1

        def __init__(self, scale: float = 1.0) -> None:
            self.scale = scale

        def requests(self, samples: Sequence[Any]) -> list[Any]:
            return [TokenStatsRequest(s.text) for s in samples]

        def score(self, samples: Sequence[Any], signals: Mapping[Any, Any]) -> np.ndarray:
            return np.array([self.scale * float(np.mean(signals[TokenStatsRequest(s.text)].logprob)) for s in samples])

    yield DoubleLoss
    del ATTACKS["test_double_loss"]


def test_a_new_attack_is_planned_from_its_class_alone(new_attack):
    plan = plan_attacks(["all"], [], LOGPROBS)
    columns = list(plan.attacks)
    assert columns[:3] == ["loss", "test_double_loss[scale=1]", "test_double_loss[scale=2]"]  # its order and its sweep
