"""``miakit scenario pretrain|finetune`` and ``miakit audit --scenario`` end to end on tiny models."""

from __future__ import annotations

import json

import pytest

from test_cli import run_cli


@pytest.fixture(scope="module")
def pretrain_scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "scenario"
    code = run_cli("scenario", "pretrain", "--out", out, "--members", "150", "--epochs", "6", "--batch-size", "8")
    assert code == 0
    return out


def test_pretrain_writes_the_scenario_files(pretrain_scenario):
    out = pretrain_scenario
    for name in ("dataset.jsonl", "members.jsonl", "nonmembers.jsonl", "scenario.json"):
        assert (out / name).is_file(), name
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "tokenizer.json").is_file()
    info = json.loads((out / "scenario.json").read_text())
    assert info["kind"] == "pretrain" and info["reference"] is None and info["duplicates"] == 1
    assert info["n_members"] == 150 and info["n_nonmembers"] == 150
    assert not (out / "canaries.jsonl").exists()


def test_audit_of_the_pretrain_scenario_separates_members(pretrain_scenario, tmp_path, cache_dir, capsys):
    out = pretrain_scenario
    run = tmp_path / "run"
    assert run_cli("audit", "--scenario", out, "--attacks", "loss", "--out", run, "--bootstrap", "100") == 0
    results = json.loads((run / "results.json").read_text())
    auroc = results["attacks"]["loss"]["auroc"]
    assert auroc["value"] > 0.65 and auroc["ci_low"] > 0.55, auroc  # seeded; measured 0.97
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["scenario"]["kind"] == "pretrain" and manifest["data"]["n_samples"] == 300


def test_duplicated_members_are_memorised_more(tmp_path, cache_dir):
    aurocs = {}
    for k in (1, 4):
        out = tmp_path / f"dup{k}"
        args = ("--members", "60", "--epochs", "3", "--duplicates", str(k), "--seed", "2")
        assert run_cli("scenario", "pretrain", "--out", out, *args) == 0
        run = tmp_path / f"run{k}"
        assert run_cli("audit", "--scenario", out, "--attacks", "loss", "--out", run, "--bootstrap", "0") == 0
        aurocs[k] = json.loads((run / "results.json").read_text())["attacks"]["loss"]["auroc"]["value"]
    assert aurocs[4] > aurocs[1] + 0.1, aurocs


def test_explicit_options_override_the_scenario(pretrain_scenario, tmp_path, cache_dir):
    out = pretrain_scenario
    members = tmp_path / "m.jsonl"
    nonmembers = tmp_path / "n.jsonl"
    rows = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]
    member_texts = [r["text"] for r in rows if r["label"] == 1][:10]
    nonmember_texts = [r["text"] for r in rows if r["label"] == 0][:12]
    members.write_text("".join(json.dumps({"text": t}) + "\n" for t in member_texts))
    nonmembers.write_text("".join(json.dumps({"text": t}) + "\n" for t in nonmember_texts))
    run = tmp_path / "run"
    args = ("--members", members, "--nonmembers", nonmembers, "--attacks", "loss", "--bootstrap", "0")
    assert run_cli("audit", "--scenario", out, *args, "--out", run) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["data"]["n_members"] == 10 and manifest["data"]["n_nonmembers"] == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("scenario", "finetune", "--out", "x", "--method", "qlora", "--base", "nowhere"), "Unknown fine-tuning"),
        (("scenario", "finetune", "--out", "x", "--canaries", "1,zero"), "comma-separated integers"),
        (("scenario", "finetune", "--out", "x", "--sweep", "depth=1,2"), "KNOB=V1,V2"),
        (("scenario", "finetune", "--out", "x", "--sweep", "epochs=2"), "at least two distinct values"),
        (("scenario", "pretrain", "--out", "x", "--size", "huge"), "Unknown size"),
        (("scenario", "pretrain", "--out", "x", "--members", "9000"), "distinct passages"),
        (("audit", "--scenario", "no-such-dir"), "not a scenario directory"),
    ],
)
def test_scenario_user_errors_exit_2_with_a_message(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*args) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_pretrain_with_a_reference_model_on_disjoint_passages(tmp_path, cache_dir):
    out = tmp_path / "with-ref"
    args = ("--members", "20", "--epochs", "1", "--reference-passages", "30", "--reference-epochs", "1")
    assert run_cli("scenario", "pretrain", "--out", out, *args) == 0
    info = json.loads((out / "scenario.json").read_text())
    assert info["reference"] == "reference" and info["reference_training"]["n_texts"] == 30
    assert (out / "reference" / "tokenizer.json").read_text() == (out / "model" / "tokenizer.json").read_text()
    run = tmp_path / "run"
    assert run_cli("audit", "--scenario", out, "--attacks", "loss,reference", "--out", run, "--bootstrap", "0") == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert list(manifest["references"]) == [str((out / "reference").resolve())]
    assert "reference" in json.loads((run / "results.json").read_text())["attacks"]
