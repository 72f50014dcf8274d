"""Relative paths in a YAML configuration are read from the file's folder, never from the current directory; a
path missing there is an error naming what was written and where it was looked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import run_cli
from lm_helpers import synthetic_texts
from miakit.errors import MiakitError
from miakit.run.spec import RunSpec, load_config_file, make_spec


def write_data(path: Path, n: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = synthetic_texts(n, seed=seed, max_words=16)
    path.write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    return path


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A config folder and a different current directory holding a same-named decoy data file."""
    config_dir, cwd = tmp_path / "project", tmp_path / "elsewhere"
    config_dir.mkdir()
    write_data(cwd / "samples.jsonl", 10, seed=99)  # the decoy: never to be read
    monkeypatch.chdir(cwd)
    return config_dir, cwd


def test_a_path_beside_the_config_is_used_not_the_decoy(layout, tiny_model_dir, cache_dir):
    config_dir, cwd = layout
    real = write_data(config_dir / "samples.jsonl", 6, seed=1)
    config = config_dir / "audit.yaml"
    config.write_text(f"model: {tiny_model_dir}\ndata: samples.jsonl\nattacks: loss\nout: run\nbootstrap: 0\n")
    assert run_cli("audit", config, "--no-progress") == 0
    manifest = json.loads((config_dir / "run" / "manifest.json").read_text())
    assert manifest["data"]["source"] == str(real) and manifest["data"]["n_samples"] == 6
    assert not (cwd / "run").exists()


def test_a_path_only_in_the_current_directory_is_an_error(layout, capsys):
    config_dir, cwd = layout
    config = config_dir / "audit.yaml"
    config.write_text("model: some-hub-model\ndata: samples.jsonl\nout: run\n")
    assert run_cli("audit", config) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "data 'samples.jsonl' does not exist" in err
    assert "".join(str((config_dir / "samples.jsonl").absolute()).split()) in "".join(err.split())
    assert "not from the current directory" in err
    assert "Traceback" not in err
    assert not (config_dir / "run").exists() and not (cwd / "run").exists()


@pytest.mark.parametrize(
    "key", ["members", "nonmembers", "calibration", "calibration_nonmembers", "canaries", "reference_corpus"]
)
def test_every_path_field_is_read_from_the_config_folder(layout, key):
    config_dir, cwd = layout
    config = config_dir / "c.yaml"
    (cwd / "f.txt").write_text("decoy\n")
    config.write_text(f"{key}: f.txt\n")
    with pytest.raises(MiakitError, match=rf"{key} 'f.txt' does not exist \(looked for {config_dir}"):
        load_config_file(config)
    (config_dir / "f.txt").write_text("real\n")
    assert load_config_file(config)[key] == str(config_dir / "f.txt")


def test_models_beside_the_config_or_hub_ids_but_never_from_the_current_directory(layout, capsys):
    config_dir, cwd = layout
    (config_dir / "base").mkdir()
    (cwd / "only-here").mkdir()
    config = config_dir / "c.yaml"
    config.write_text("model: base\nreference: [base, org/hub-model]\ndata: x.jsonl\n")
    write_data(config_dir / "x.jsonl", 4, seed=2)
    values = load_config_file(config)
    assert values["model"] == str(config_dir / "base")
    assert values["reference"] == [str(config_dir / "base"), "org/hub-model"]
    assert make_spec(RunSpec, values).data == str(config_dir / "x.jsonl")
    for written in ("only-here", "./missing"):
        config.write_text(f"model: {written}\ndata: x.jsonl\n")
        assert run_cli("audit", config) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"model '{written}' is not in the file's folder" in err
        assert str(config_dir / written.removeprefix("./")) in "".join(err.split())
        assert "Traceback" not in err
    # an absolute path is taken as written; out need not exist yet
    config.write_text(f"model: {cwd / 'only-here'}\ndata: x.jsonl\nout: runs/new\n")
    values = load_config_file(config)
    assert values["model"] == str(cwd / "only-here") and values["out"] == str(config_dir / "runs/new")
