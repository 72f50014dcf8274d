"""Attack specs as users mistype them, and the score column names of repeated attacks."""

import inspect

import pytest

from miakit.attacks import ATTACKS
from miakit.attacks.spec import build_attacks, column_names, parameters_text
from miakit.errors import MiakitError


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mink", "Unknown attack 'mink'; did you mean 'min_k'?"),
        ("LOSS", "Unknown attack 'LOSS'; did you mean 'loss'?"),
        ("min_kpp", "did you mean 'min_k_pp'?"),
        ("xyzzy", "Unknown attack 'xyzzy'. Known attacks: "),
        ("min_k[kk=0.1]", "Attack 'min_k' has no parameter 'kk' (min_k[kk=0.1]); did you mean 'k'?"),
        (
            "max_renyi[alfa=1]",
            "did you mean 'alpha'? Its parameters (defaults): alpha=0.5, k=0.1, approx=full, topk=20.",
        ),
        ("surp[zzz=1]", "Attack 'surp' has no parameter 'zzz' (surp[zzz=1]). Its parameters (defaults): "),
    ],
)
def test_a_mistyped_spec_names_what_is_valid(spec, message):
    with pytest.raises(MiakitError) as info:
        build_attacks(spec)
    assert message in str(info.value)


def test_the_parameters_shown_are_the_constructor_defaults():
    """Every attack's parameter list, read independently from its signature, is what the message shows."""
    for cls in ATTACKS.values():
        text = parameters_text(cls)
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            assert name in text, (cls.name, name)
        if "k" in inspect.signature(cls.__init__).parameters and cls.name == "min_k":
            assert text == f"k={inspect.signature(cls.__init__).parameters['k'].default:g}"


def test_a_repeated_attack_names_every_instance_with_its_values():
    defaults = build_attacks("max_renyi")[0].get_params()
    attacks = [*build_attacks("max_renyi"), *build_attacks("max_renyi[alpha=1,2]"), *build_attacks("zlib")]
    assert column_names(attacks) == [
        f"max_renyi[alpha={defaults['alpha']:g}]",
        "max_renyi[alpha=1]",
        "max_renyi[alpha=2]",
        "zlib",
    ]


def test_a_sweep_of_two_parameters_names_both_and_a_lone_attack_keeps_its_short_name():
    attacks = build_attacks("max_renyi[alpha=0.5,inf,k=0.1,0.2]")
    assert column_names(attacks) == [
        "max_renyi[alpha=0.5,k=0.1]",
        "max_renyi[alpha=0.5,k=0.2]",
        "max_renyi[alpha=inf,k=0.1]",
        "max_renyi[alpha=inf,k=0.2]",
    ]
    assert column_names(build_attacks("min_k[k=0.1]") + build_attacks("loss")) == ["min_k[k=0.1]", "loss"]
    assert column_names(build_attacks("min_k")) == ["min_k"]


def test_a_hidden_parameter_stays_out_of_the_name():
    attacks = [a.with_params(model="ref") for a in build_attacks("reference", check=False)]
    assert column_names(attacks, ["model"]) == ["reference"]


def test_the_planner_names_a_default_next_to_a_value():
    """'all' sweeps max_renyi over alpha: its default instance is named with its alpha too (planner diff)."""
    from miakit.run.planner import plan_attacks
    from miakit.targets.capability import Capability

    plan = plan_attacks(["all", "min_k[k=0.1]"], [], frozenset(Capability))
    renyi = [c for c in plan.attacks if c.startswith("max_renyi")]
    assert renyi == ["max_renyi[alpha=0.5]", "max_renyi[alpha=1]", "max_renyi[alpha=2]", "max_renyi[alpha=inf]"]
    assert "min_k[k=0.2]" in plan.attacks and "min_k[k=0.1]" in plan.attacks and "min_k" not in plan.attacks


def test_a_mistyped_attack_is_reported_before_data_or_model_load(tmp_path, capsys):
    """The spec is read first: a missing model and unreadable data are not what the user hears of."""
    from miakit.cli import main

    with pytest.raises(SystemExit) as info:
        main(["audit", "-m", str(tmp_path / "no-model"), "-d", str(tmp_path / "no-data.jsonl"), "-a", "loss,mink"])
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 2
    assert "Unknown attack 'mink'; did you mean 'min_k'?" in err
    assert "no model" not in err and "no-data" not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written
