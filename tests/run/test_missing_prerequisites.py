"""A calibration set lacking what an attack needs skips that attack with its reason; the rest of the audit runs."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run_cli
from lm_helpers import synthetic_texts
from miakit.attacks import ATTACKS
from miakit.attacks.base import MissingPrerequisite
from miakit.data import Sample
from miakit.report import read_run
from miakit.run.planner import plan_attacks
from miakit.targets.capability import CAUSAL_LM

NONMEMBERS_ONLY = [Sample(f"c{i}", t, 0) for i, t in enumerate(synthetic_texts(8, seed=12, max_words=10))]
CON_RECALL_REASON = "con_recall needs calibration members for its prefix; the calibration set has none."
PROBE_REASON = (
    "activation_probe needs at least 2 calibration members and 2 non-members; the calibration set has 0 member(s) "
    "and 8 non-member(s)."
)


def write_jsonl(path, samples):
    path.write_text("".join(json.dumps({"id": s.id, "text": s.text, "label": s.label}) + "\n" for s in samples))
    return path


def data_file(tmp_path):
    texts = synthetic_texts(12, seed=13, max_words=12)
    return write_jsonl(tmp_path / "data.jsonl", [Sample(f"s{i}", t, i % 2) for i, t in enumerate(texts)])


def test_audit_all_with_nonmember_calibration_skips_what_needs_members(tiny_model_dir, tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    code = run_cli(
        "audit", "--model", tiny_model_dir, "--data", data_file(tmp_path), "--calibration",
        write_jsonl(tmp_path / "cal.jsonl", NONMEMBERS_ONLY), "--attacks", "all", "--out", out, "--bootstrap", "20",
        "--no-progress",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.out + captured.err
    results, scores, manifest = read_run(out)
    assert results["skipped"]["con_recall"] == CON_RECALL_REASON
    assert results["skipped"]["activation_probe"] == PROBE_REASON
    assert manifest["skipped"] == results["skipped"]
    assert "con_recall" not in scores and "activation_probe" not in scores
    assert "con_recall" not in manifest["attacks"] and "activation_probe" not in manifest["attacks"]
    assert {"loss", "recall", "min_k"} <= set(scores.columns)  # the rest of the audit ran
    console = " ".join(captured.out.split())
    assert CON_RECALL_REASON in console and PROBE_REASON in console


def test_nothing_left_to_run_is_one_clear_error(tiny_model_dir, tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    code = run_cli(
        "audit", "--model", tiny_model_dir, "--data", data_file(tmp_path), "--calibration",
        write_jsonl(tmp_path / "cal.jsonl", NONMEMBERS_ONLY), "--attacks", "con_recall", "--out", out,
        "--no-progress",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.out + captured.err
    assert "No attack can run" in captured.err + captured.out
    assert CON_RECALL_REASON in " ".join((captured.err + captured.out).split())
    assert not (out / "results.json").exists() and not (out / "scores.csv").exists()


def test_planner_skips_with_the_reason_when_it_sees_the_calibration_samples():
    plan = plan_attacks(
        ["recall", "con_recall", "activation_probe", "loss"], [], CAUSAL_LM, calibration=NONMEMBERS_ONLY
    )
    assert plan.skipped == {"con_recall": CON_RECALL_REASON, "activation_probe": PROBE_REASON}
    assert set(plan.attacks) == {"recall", "loss"}
    one_member = [*NONMEMBERS_ONLY, Sample("m", "The king.", 1)]
    plan = plan_attacks(["con_recall", "activation_probe"], [], CAUSAL_LM, calibration=one_member)
    assert set(plan.attacks) == {"con_recall"}
    assert "1 member(s) and 8 non-member(s)" in plan.skipped["activation_probe"]


def test_called_directly_a_missing_prerequisite_is_an_error():
    with pytest.raises(MissingPrerequisite, match="calibration members"):
        ATTACKS["con_recall"]().fit(NONMEMBERS_ONLY, {})
