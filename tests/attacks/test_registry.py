"""What attacks declare on their classes (order, sweeps, extra models, hints, parameter checks) and the README's
attack table rendered from them."""

from pathlib import Path

import numpy as np
import pytest

from miakit.attacks import ATTACKS, attack_table_markdown, build_attacks, ordered_names
from miakit.attacks.registry import TABLE_END, TABLE_START
from miakit.errors import MiakitError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_attack_table_is_the_registry_table():
    text = README.read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text, "README.md lacks the attack-table markers"
    table = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip("\n") + "\n"
    assert table == attack_table_markdown(), "README's attack table is stale: paste attack_table_markdown()"


def test_table_fills_defaults_and_stars_attacks_outside_all():
    rows = {row.split(" | ")[0].strip("| `*"): row for row in attack_table_markdown().splitlines()[2:]}
    assert set(rows) == set(ATTACKS)
    assert "(k = 0.4, τ = 2)" in rows["surp"] and "(p = ∞;" in rows["gradnorm"]
    assert "LL(x \\| P)" in rows["recall"]  # a pipe inside a cell is escaped
    starred = {name for name, row in rows.items() if row.startswith(f"| `{name}`*")}
    assert starred == {name for name, cls in ATTACKS.items() if not cls.in_all}


def test_order_within_all():
    first = ["loss", "zlib", "lowercase", "min_k", "max_k", "min_k_pp", "surp", "max_renyi", "dc_pdd", "reference"]
    first += ["recall", "con_recall"]
    assert ordered_names() == first + sorted(set(ATTACKS) - set(first))


def test_default_sweep_expands_max_renyi_to_every_stored_order():
    cls = ATTACKS["max_renyi"]
    attacks = build_attacks(f"max_renyi[{cls.default_sweep}]")
    assert [a.alpha for a in attacks] == [0.5, 1, 2, float("inf")]
    assert [n for n, c in ATTACKS.items() if c.default_sweep] == ["max_renyi"]


def test_reference_names_its_model_and_the_planner_can_fill_it():
    (attack,) = build_attacks("reference", check=False)
    assert attack.model_param == "model" and attack.models() == ()
    with pytest.raises(MiakitError, match="--reference MODEL"):
        attack.check_params()
    filled = attack.with_params(model="base-model")
    filled.check_params()
    assert filled.models() == ("base-model",) and filled.column_name() == "reference[model=base-model]"
    assert ATTACKS["loss"]().models() == ()


def test_neighbourhood_names_no_hub_model_by_itself():
    """The masked LM used to default to the hub id 'roberta-base', which the user never typed (a hidden
    download); now the plan fails before any model loads and says how to name one."""
    with pytest.raises(MiakitError, match=r"neighbourhood\[mlm=DIR_OR_HUB_ID\]"):
        build_attacks("neighbourhood")
    (attack,) = build_attacks("neighbourhood[mlm=./my-mlm]")
    assert attack.mlm == "./my-mlm"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("min_k[k=7]", "k must be in"),
        ("max_renyi[alpha=3]", "alpha must be one of"),
        ("gradnorm[p=3]", "p must be 1, 2 or inf"),
        ("recall[n_shots=0]", "n_shots must be an integer of at least 1"),
        ("dc_pdd[corpus=/no/such/corpus.txt]", "is not a file"),
        ("activation_probe[folds=1]", "folds must be an integer of at least 2"),
    ],
)
def test_bad_hyper_parameters_fail_when_the_plan_is_built(spec, message):
    with pytest.raises(MiakitError, match=message):
        build_attacks(spec)
    build_attacks(spec, check=False)  # construction itself only stores them (scikit-learn's rule)


def test_every_attack_accepts_its_defaults_except_where_a_model_must_be_named():
    needs_a_name = set()
    for name, cls in ATTACKS.items():
        try:
            cls().check_params()
        except MiakitError:
            needs_a_name.add(name)
    assert needs_a_name == {"reference", "neighbourhood", "petal", "decop"}


def test_surp_hint_explains_infinite_scores():
    surp = ATTACKS["surp"](tau=2.0)
    assert surp.score_hint(np.array([-1.0, -2.0])) is None
    hint = surp.score_hint(np.array([-1.0, -np.inf]))
    assert "tau = 2.0" in hint and "surp[tau=4]" in hint
    assert ATTACKS["loss"]().score_hint(np.array([np.nan])) is None
