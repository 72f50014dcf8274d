"""The declared top-k approximation of the full-distribution attacks: what it needs, how it is named and told,
and the errors of its parameters."""

import pytest

from miakit.attacks import build_attacks
from miakit.errors import MiakitError
from miakit.run.planner import plan_attacks
from miakit.signals import TokenStatsRequest
from miakit.targets.capability import CAUSAL_LM, Capability

API = frozenset({Capability.GENERATION, Capability.TOPK_LOGPROBS})
APPROXIMABLE = ("min_k_pp", "surp", "max_renyi")


@pytest.mark.parametrize("name", APPROXIMABLE)
def test_an_api_target_skips_the_full_attack_with_a_hint_and_runs_the_approximation(name):
    skipped = plan_attacks([name], [], API)
    assert not skipped.attacks and skipped.skipped == {
        name: f"target lacks full_logits; {name}[approx=topk] runs it on the top-k log-probs as a declared "
        "approximation"
    }
    plan = plan_attacks([f"{name}[approx=topk]"], [], API)
    column = f"{name}[approx=topk]"
    assert list(plan.attacks) == [column] and not plan.skipped
    attack = plan.attacks[column]
    assert attack.needs() == {Capability.TOPK_LOGPROBS}
    assert attack.requests([_sample("a b")]) == [TokenStatsRequest("a b", topk=20)]
    (note,) = attack.notes()
    assert "approximation" in note and "top 20 tokens" in note


@pytest.mark.parametrize("name", APPROXIMABLE)
def test_the_full_attack_reads_the_full_distribution(name):
    (attack,) = build_attacks(name)
    assert attack.needs() == {Capability.FULL_LOGITS} and attack.notes() == []
    assert attack.requests([_sample("a b")]) == [TokenStatsRequest("a b")]
    assert set(plan_attacks([name], [], CAUSAL_LM).attacks) == {name}


def test_the_approximation_is_named_in_the_column_with_its_k():
    assert [a.column_name() for a in build_attacks("min_k_pp[approx=topk,topk=5,20]")] == [
        "min_k_pp[approx=topk,topk=5]",
        "min_k_pp[approx=topk]",
    ]


def test_a_text_not_on_a_top_logprobs_target_says_what_is_missing():
    plan = plan_attacks(["min_k_pp[approx=topk]"], [], frozenset({Capability.GENERATION}))
    assert plan.skipped == {"min_k_pp[approx=topk]": "target lacks topk_logprobs"}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("min_k_pp[approx=top]", "approx must be 'full' or 'topk', got 'top'"),
        ("surp[approx=topk,topk=0]", "topk must be an integer of at least 1, got 0"),
        ("max_renyi[topk=5]", "topk applies only with approx=topk"),
    ],
)
def test_bad_approximation_parameters_are_refused(spec, problem):
    with pytest.raises(MiakitError, match=rf"Bad parameters .*{problem}"):
        plan_attacks([spec], [], API)


def test_a_request_key_changes_with_topk_and_not_for_the_full_distribution():
    full = TokenStatsRequest("text")
    assert full.key() == TokenStatsRequest("text", topk=0).key()
    assert len({full.key(), TokenStatsRequest("text", topk=5).key(), TokenStatsRequest("text", topk=20).key()}) == 3
    with pytest.raises(ValueError):
        TokenStatsRequest("text", topk=-1)


def _sample(text):
    from miakit.data import Sample

    return Sample(id="0", text=text, label=1)
