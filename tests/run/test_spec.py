"""One run specification is the single source of the CLI flags, the YAML keys and the Python API keywords."""

from __future__ import annotations

import typing

import pytest
import typer
import yaml

import miakit.api
from miakit.cli import app, main
from miakit.errors import MiakitError
from miakit.run.spec import BlindSpec, DatasetInferenceSpec, RunSpec, load_config_file, make_spec

# A non-default value for every field a test run can set without loading anything.
VALUES = {
    "model": "some-model",
    "scenario": None,
    "attacks": ["loss", "min_k[k=0.1,0.2]"],
    "calibration": None,
    "calibration_nonmembers": "known.txt",
    "calibration_fraction": 0.25,
    "chunk_words": 40,
    "canaries": "canaries.jsonl",
    "bootstrap": 123,
    "nan_policy": "omit",
    "out": "runs/x",
    "reference": ["ref-a", "ref-b"],
    "batch_size": 3,
    "dtype": "float32",
    "device": "cpu",
    "prepend_bos": True,
    "revision": "abc123",
    "trust_remote_code": True,
    "allow_pickle": True,
    "max_length": 64,
    "stride": 16,
    "reference_corpus": "corpus.txt",
    "cache": False,
    "progress": False,
    "data": "samples.jsonl",
    "members": None,
    "nonmembers": None,
    "benchmark": None,
    "benchmark_path": None,
    "max_samples": 50,
    "seed": 7,
    "text_column": "content",
    "label_column": "is_member",
    "label_map": {"yes": 1, "no": 0},
    "api_base": "http://127.0.0.1:9/v1",
    "api_model": "served",
    "api_key_env": "MY_API_KEY",
    "api_concurrency": 3,
    "api_timeout": 12.5,
    "api_retries": 2,
    "api_top_logprobs": 5,
    "api_endpoint": "chat",
    "api_chat_instruction": "Go on.",
    "api_price_prompt": 0.25,
    "api_price_completion": 1.5,
}
# The fields naming files that must exist (a YAML file reads them from its folder).
FILES = ("canaries", "reference_corpus", "data", "calibration_nonmembers")


def _command(name: str):
    group = typer.main.get_command(app)
    return group.commands[name]


@pytest.mark.parametrize(
    ("command", "spec", "positional"),
    [
        ("audit", RunSpec, {"config"}),
        ("blind", BlindSpec, {"data_file"}),
        ("infer-dataset", DatasetInferenceSpec, set()),
    ],
)
def test_every_spec_field_is_a_flag_and_nothing_else(command, spec, positional):
    params = {p.name for p in _command(command).params}
    assert params - positional == set(spec.model_fields)


def test_values_cover_every_run_field():
    assert set(VALUES) == set(RunSpec.model_fields)


def _argv(values: dict) -> list[str]:
    argv = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + name.replace("_", "-"))
        elif name == "reference":
            for v in value:
                argv += [flag, v]
        elif isinstance(value, list):
            argv += [flag, ",".join(value)]
        elif isinstance(value, dict):
            argv += [flag, ",".join(f"{k}={v}" for k, v in value.items())]
        else:
            argv += [flag, str(value)]
    return argv


def test_flags_yaml_and_keywords_give_the_same_spec(tmp_path, monkeypatch):
    seen = {}

    def capture(model=None, data=None, *, config=None, console=None, **options):
        seen["spec"] = make_spec(RunSpec, {**config, **options})
        raise MiakitError("captured")

    monkeypatch.setattr(miakit.api, "audit", capture)
    with pytest.raises(SystemExit):
        main(["audit", *_argv(VALUES)])
    from_flags = seen["spec"]

    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in VALUES.items() if v is not None}))
    for name in FILES:
        (tmp_path / VALUES[name]).write_text("text\n")
    from_yaml = make_spec(RunSpec, load_config_file(path))
    from_keywords = make_spec(RunSpec, {k: v for k, v in VALUES.items() if v is not None})
    # a YAML file reads relative paths from its folder (and names a run dir there)
    relative = {name: str(tmp_path / VALUES[name]) for name in (*FILES, "out")}
    assert from_yaml.model_dump() == {**from_keywords.model_dump(), **relative}
    assert from_flags.model_dump() == from_keywords.model_dump()
    for name, value in VALUES.items():
        if value is not None and name != "attacks":
            assert getattr(from_keywords, name) == value, name
    assert from_keywords.attacks == ["loss", "min_k[k=0.1,0.2]"]


def test_a_yaml_flag_overridden_on_the_command_line(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(miakit.api, "audit", lambda **kw: seen.update(kw) or (_ for _ in ()).throw(MiakitError("x")))
    path = tmp_path / "audit.yaml"
    path.write_text("model: m\ndata: d.jsonl\nbatch_size: 4\nbootstrap: 10\n")
    (tmp_path / "d.jsonl").write_text("")
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--batch-size", "2"])
    assert seen["config"]["batch_size"] == 2 and seen["config"]["bootstrap"] == 10


def test_unknown_keys_are_errors_everywhere(tmp_path, capsys):
    with pytest.raises(MiakitError, match="batchsize"):
        miakit.api.audit("m", "d.jsonl", batchsize=3)
    path = tmp_path / "audit.yaml"
    path.write_text("model: m\ndata: d.jsonl\nbatchsize: 3\n")
    (tmp_path / "d.jsonl").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path)])
    assert exit_info.value.code == 2 and "batchsize" in capsys.readouterr().err


def test_spec_field_types_map_to_flag_types(capsys):
    """Booleans are --x/--no-x switches, lists of references repeat, numbers are typed."""
    params = {p.name: p for p in _command("audit").params}
    assert params["prepend_bos"].secondary_opts == ["--no-prepend-bos"]
    assert params["reference"].multiple and typing.get_origin(RunSpec.model_fields["reference"].annotation) is list
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "--model", "m", "--data", "d.jsonl", "--batch-size", "eight"])
    assert exit_info.value.code == 2 and "--batch-size" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "spec"), [("audit", RunSpec), ("blind", BlindSpec), ("infer-dataset", DatasetInferenceSpec)]
)
def test_readme_option_tables_are_generated_from_the_specs(command, spec):
    from pathlib import Path

    from miakit.run.spec import options_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start, end = f"<!-- options:{command}:start -->\n", f"<!-- options:{command}:end -->"
    block = readme[readme.index(start) + len(start) : readme.index(end)]
    assert block == options_markdown(spec), f"regenerate README's {command} table from miakit.run.spec"
