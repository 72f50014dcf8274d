"""CLI usage errors (one paragraph, exit 2, no traceback), --debug anywhere, user text printed literally (no rich
markup), a split --attacks list, and option names that stay whole in an 80-column --help."""

import io
import json
import re
import subprocess
import sys

import pytest
from rich.console import Console

from cli_helpers import run_cli
from miakit.cli import main
from miakit.errors import MiakitError
from miakit.report.console import print_results
from miakit.run.spec import BlindSpec, DatasetInferenceSpec, RunSpec


def one_paragraph(err: str) -> str:
    """The error text, checked to be one paragraph without a traceback, with its line wrapping undone."""
    assert "Traceback" not in err
    assert err.strip() and "\n\n" not in err.strip(), err
    assert err.startswith("error: "), err
    return " ".join(err.split())


def test_bare_miakit_prints_the_help_and_a_hint_and_exits_2(capsys):
    assert run_cli() == 2
    err = capsys.readouterr().err
    assert "Usage: miakit [OPTIONS] COMMAND" in err and "audit" in err and "scenario" in err
    last = err.strip().split("\n\n")[-1]
    assert "no command given" in " ".join(last.split()) and "miakit audit --help" in " ".join(last.split())
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "--batch-size", "abc"], "Invalid value for '--batch-size': expected an integer, got 'abc'."),
        (["audit", "--calibration-fraction", "x"], "'--calibration-fraction': expected a number, got 'x'."),
        (["scenario", "pretrain"], "Missing option '--out'"),
        (["audti"], "No such command 'audti'. Did you mean 'audit'?"),
        (["audit", "--bach-size", "4"], "No such option: --bach-size (Possible options: --batch-size"),
        (["scenario", "pretrian", "-o", "x"], "Did you mean 'pretrain'?"),
    ],
)
def test_usage_errors_are_one_paragraph_exit_2_and_name_the_help(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*args) == 2
    captured = capsys.readouterr()
    err = one_paragraph(captured.err)
    assert message in err
    assert re.search(r"See 'miakit( [a-z-]+)* --help'\.$", err), err
    assert captured.out == "" and list(tmp_path.iterdir()) == [], "a usage error writes nothing"


def test_debug_is_accepted_after_the_subcommand_and_shows_the_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MIAKIT_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_cli("audit", "-d", "data.jsonl") == 2  # without --debug: the one-paragraph error
    assert "No target model given" in one_paragraph(capsys.readouterr().err)
    with pytest.raises(MiakitError, match="No target model given"):
        main(["audit", "--debug", "-d", "data.jsonl"])
    with pytest.raises(MiakitError, match="No target model given"):
        main(["--debug", "audit", "-d", "data.jsonl"])
    done = subprocess.run(
        [sys.executable, "-m", "miakit.cli", "audit", "-d", "data.jsonl", "--debug"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 1 and "Traceback" in done.stderr and "No such option" not in done.stderr


HOSTILE = ["[bold red]EVIL[/bold red]", "exp[v2]/data.jsonl", "[/x]"]


@pytest.mark.parametrize("text", HOSTILE)
def test_markup_in_a_path_prints_literally(text, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli("audit", "-m", "model", "-d", text) == 2
    err = one_paragraph(capsys.readouterr().err)
    assert text in err


@pytest.mark.parametrize(
    ("spec", "shown"),
    [("[/x]", "Cannot read attack '[/x]'"), ("[bold red]EVIL[/bold red]", "'[bold red]EVIL[/bold red]'")],
)
def test_markup_in_an_attack_spec_prints_literally(spec, shown, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"text {i}", "label": i % 2}) + "\n" for i in range(4)))
    assert run_cli("audit", "-m", tiny_model_dir, "-d", data, "-a", spec) == 2
    assert shown in one_paragraph(capsys.readouterr().err)


def test_markup_in_results_prints_literally_even_on_a_markup_console():
    """Attack columns, warnings, canary ids, the comparison and skipped reasons: user text, never markup."""
    metric = {"value": 0.75, "ci_low": 0.6, "ci_high": 0.9, "estimable": True}
    results = {
        "attacks": {"min_k[k=0.1]": {"auroc": metric}, "[bold red]EVIL[/bold red]": {"auroc": metric}},
        "warnings": ["label [/x] in exp[v2]/data.jsonl"],
        "comparison": {
            "best": "min_k[k=0.1]",
            "pairs": {
                "[bold red]EVIL[/bold red]": {
                    "auroc_difference": 0.0,
                    "ci_low": -0.1,
                    "ci_high": 0.1,
                    "p_value": 1.0,
                    "p_value_holm": 1.0,
                }
            },
            "adjustment": "Holm [/x]",
        },
        "canaries": [
            {
                "id": "[/x]",
                "repeats": 4,
                "rank": 1,
                "n_candidates": 16,
                "exposure": 4.0,
                "max_exposure": 4.0,
                "note": "[bold]n[/bold]",
            }
        ],
        "skipped": {"[red]s[/red]": "needs [/x]"},
    }
    buffer = io.StringIO()
    print_results(results, Console(file=buffer, width=300, markup=True, color_system=None))
    out = buffer.getvalue()
    for text in (
        "min_k[k=0.1]",
        "[bold red]EVIL[/bold red]",
        "label [/x] in exp[v2]/data.jsonl",
        "attacks compared with min_k[k=0.1]",
        "AUROC(min_k[k=0.1]) - AUROC",
        "Holm [/x]",
        "[/x]: [bold]n[/bold]",
        "[red]s[/red]: needs [/x]",
    ):
        assert text in out, text


def test_split_attack_list_is_not_taken_for_a_config_file(tmp_path, monkeypatch, capsys):
    """``--attacks loss, min_k``: the shell passes ' min_k' as a second argument, which typer reads as the
    configuration file; say what happened and how to write it, and do no work."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"text {i}", "label": i % 2}) + "\n" for i in range(4)))
    code = run_cli("audit", "-m", "model", "-d", data, "--attacks", "loss,", "min_k", "-o", "run")
    assert code == 2
    err = one_paragraph(capsys.readouterr().err)
    assert "'min_k' is not a configuration file" in err and "--attacks loss,min_k" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
    assert run_cli("audit", "-m", "model", "-d", data, "-a", "loss", "missing.yaml") == 2
    assert "Configuration file 'missing.yaml' does not exist" in one_paragraph(capsys.readouterr().err)


def _flags(spec_cls) -> list[str]:
    return ["--" + name.replace("_", "-") for name in spec_cls.model_fields]


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        (["audit"], _flags(RunSpec)),
        (["blind"], _flags(BlindSpec)),
        (["infer-dataset"], _flags(DatasetInferenceSpec)),
        (["scenario", "finetune"], ["--out", "--base", "--canaries", "--candidates", "--sweep", "--max-length"]),
        (["scenario", "pretrain"], ["--out", "--reference-passages", "--reference-epochs", "--duplicates"]),
    ],
)
def test_help_at_80_columns_shows_every_option_name_whole(command, flags, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli(*command, "--help") == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = set(re.findall(r"--[a-z][a-z0-9-]*", out))
    for flag in flags:
        assert flag in words, f"{flag} is not whole in the 80-column help"
    assert "…" not in out


def test_command_list_at_80_columns_shows_whole_summaries(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli("--help") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    for command in ("audit", "blind", "infer-dataset", "attacks", "report", "demo", "scenario"):
        line = next(line for line in lines if line.split()[0] == command)
        assert not line.endswith("...") and len(line) <= 80, line
