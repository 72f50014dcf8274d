"""Fine-tune scenarios on a tiny pretrained base built in the test: full and LoRA, canaries, sweep."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from miakit.api import audit
from miakit.scenarios import build_finetune_scenario, finetune_causal_lm, load_bundled_passages, train_tiny_gpt
from miakit.scenarios.layout import load_scenario
from miakit.targets.hf_causal import HFCausalLM


@pytest.fixture(scope="module")
def base_and_corpus(tmp_path_factory):
    """A tiny GPT-2 'pretrained' on 300 bundled passages, and a corpus file of 160 passages it never saw."""
    passages = [p["text"] for p in load_bundled_passages()]
    pool = random.Random(11).sample(passages, 460)
    root = tmp_path_factory.mktemp("finetune-base")
    base = train_tiny_gpt(pool[:300], root / "base", epochs=4, seed=0, num_threads=1)
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in pool[300:]), encoding="utf-8")
    return base, corpus


def _build(base_and_corpus, out, **options):
    base, corpus = base_and_corpus
    settings = {"n_members": 50, "batch_size": 4, "seed": 0, "num_threads": 1, **options}
    return build_finetune_scenario(out, base=str(base), corpus=corpus, **settings)


@pytest.fixture(scope="module")
def full_scenario(base_and_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "scenario"
    return _build(base_and_corpus, out, method="full", epochs=3, lr=3e-4, canary_repeats=(1, 8), n_candidates=32)


@pytest.fixture(scope="module")
def lora_scenario(base_and_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "scenario"
    return _build(base_and_corpus, out, method="lora", epochs=4, lr=5e-3)


def test_full_finetune_writes_every_scenario_file(full_scenario, base_and_corpus):
    for name in ("dataset.jsonl", "members.jsonl", "nonmembers.jsonl", "canaries.jsonl", "scenario.json"):
        assert (full_scenario / name).is_file(), name
    assert (full_scenario / "model" / "model.safetensors").is_file()
    info = load_scenario(full_scenario)
    assert info["kind"] == "finetune" and info["reference"] == str(base_and_corpus[0].resolve())
    assert info["n_members"] == 50 and info["n_nonmembers"] == 50
    training = info["training"]
    assert training["method"] == "full" and training["n_texts"] == 50 + 1 + 8  # members + canary copies
    assert training["epoch_mean_loss"][-1] < training["epoch_mean_loss"][0]


def test_full_finetune_audit_reference_beats_loss_and_reports_canaries(full_scenario, tmp_path, cache_dir):
    result = audit(scenario=str(full_scenario), attacks="loss,reference", out=str(tmp_path / "run"), progress=False)
    auroc = result.metrics["auroc"]
    # measured: loss 0.81, reference 0.998 (a realistic LOSS, not 1.0; the base model as reference far above)
    assert 0.6 < auroc["loss"] < 0.97 and auroc["reference"] > auroc["loss"] + 0.08, auroc.to_dict()
    canaries = {c["repeats"]: c for c in result.results["canaries"]}
    assert set(canaries) == {1, 8}
    for c in canaries.values():
        assert c["n_candidates"] == 32 and 0.0 <= c["exposure"] <= c["max_exposure"] == pytest.approx(5.0)
    assert canaries[8]["exposure"] >= 3.0  # inserted 8 times: ranked near the top (measured: first)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [c["id"] for c in saved["canaries"]] == [c["id"] for c in result.results["canaries"]]
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Canary exposure" in html
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["scenario"]["kind"] == "finetune"


def test_lora_adapter_loads_as_target_and_equals_the_merged_model(lora_scenario, base_and_corpus, tmp_path):
    model_dir = lora_scenario / "model"
    assert (model_dir / "adapter_config.json").is_file() and not (model_dir / "model.safetensors").exists()
    info = load_scenario(lora_scenario)
    assert info["training"]["saved_as"] == "adapter"
    assert info["training"]["n_trainable_parameters"] < info["training"]["n_parameters"] / 5

    members = [json.loads(line)["text"] for line in (lora_scenario / "members.jsonl").read_text().splitlines()]
    merged = tmp_path / "merged"
    record = finetune_causal_lm(
        str(base_and_corpus[0]), members, merged, method="lora", lr=5e-3, epochs=4, batch_size=4, merge=True,
        num_threads=1,
    )  # fmt: skip
    assert record["saved_as"] == "merged" and (merged / "model.safetensors").is_file()
    adapter_target = HFCausalLM.from_pretrained(str(model_dir))
    merged_target = HFCausalLM.from_pretrained(str(merged))
    assert adapter_target.fingerprint != merged_target.fingerprint
    ids = adapter_target.encode(members[0])[:64]  # within the tiny model's 128-token context
    a = adapter_target.token_stats([(ids, 1)])[0]["logprob"]
    b = merged_target.token_stats([(ids, 1)])[0]["logprob"]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_lora_audit_reference_beats_loss(lora_scenario, tmp_path, cache_dir):
    result = audit(scenario=str(lora_scenario), attacks="loss,reference", out=str(tmp_path / "run"), progress=False)
    auroc = result.metrics["auroc"]
    # measured: loss 0.62, reference 0.99
    assert auroc["reference"] > auroc["loss"] + 0.1 and auroc["reference"] > 0.8, auroc.to_dict()


def test_sweep_builds_one_target_per_value_and_one_report(base_and_corpus, tmp_path, cache_dir):
    from miakit.scenarios.sweep import run_sweep

    base, corpus = base_and_corpus
    options = {"base": str(base), "corpus": corpus, "n_members": 30, "batch_size": 4, "lr": 1e-3, "num_threads": 1}
    record = run_sweep(tmp_path / "sweep", "epochs", [1, 6], options, attacks="loss,reference", progress=False)
    for name in ("sweep.json", "sweep.csv", "sweep.png", "sweep.html"):
        assert (tmp_path / "sweep" / name).is_file(), name
    auroc = {(r["value"], r["attack"]): r["auroc"] for r in record["rows"]}
    assert auroc[(6, "reference")] > auroc[(1, "reference")]  # more exposure, more leakage
    html = (tmp_path / "sweep" / "sweep.html").read_text()
    assert "epochs=6" in html and "reference" in html


def test_cli_sweep_over_methods_writes_one_report(base_and_corpus, tmp_path, cache_dir, capsys):
    from test_cli import run_cli

    base, corpus = base_and_corpus
    out = tmp_path / "sweep"
    args = ("--base", base, "--corpus", corpus, "--members", "20", "--batch-size", "4", "--attacks", "loss,reference")
    assert run_cli("scenario", "finetune", "--out", out, "--sweep", "method=full,lora", *args) == 0
    assert "Sweep report" in capsys.readouterr().out
    record = json.loads((out / "sweep.json").read_text())
    assert record["key"] == "method" and record["values"] == ["full", "lora"]
    lora = json.loads((out / "method=lora" / "scenario.json").read_text())
    assert lora["training"]["method"] == "lora" and lora["training"]["lr"] == 1e-3  # the method's default lr
    assert (out / "method=full" / "audit" / "report.html").is_file()
