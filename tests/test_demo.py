"""``miakit demo`` end to end on small plans (the default plan is what ``make demo`` runs)."""

import json
import time
from pathlib import Path

import pytest

from lm_helpers import needs_smollm2
from test_cli import run_cli


def test_quick_demo_builds_the_scenario_audits_it_and_reuses_it(tmp_path, cache_dir, capsys):
    out = tmp_path / "demo"
    started = time.perf_counter()
    assert run_cli("demo", "--quick", "--members", "40", "--epochs", "2", "--out", out) == 0
    assert time.perf_counter() - started < 600  # a loose guard against a hang, not a speed test
    printed = capsys.readouterr().out
    assert "--quick" in printed and "40 passages" in printed and "What an attacker learns" in printed
    assert "report.html" in printed
    results = json.loads((out / "results.json").read_text())
    assert {"loss", "reference", "min_k_pp", "blind_bow"} <= set(results["attacks"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["n_members"] == 40 and manifest["data"]["n_nonmembers"] == 40
    assert manifest["counts"]["forward_passes_computed"] > 0
    scenario = json.loads((Path(manifest["scenario"]["directory"]) / "scenario.json").read_text())
    assert scenario["kind"] == "pretrain" and scenario["reference"] == "reference"  # the one scenario.json schema
    assert manifest["references"]  # the scenario's reference model was used by the reference attack

    assert run_cli("demo", "--quick", "--members", "40", "--epochs", "2", "--out", tmp_path / "again") == 0
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["counts"]["forward_passes_computed"] == 0  # models reused from the cache, signals from the store


@pytest.mark.slow
@needs_smollm2
def test_default_demo_finetunes_smollm2_and_reports_canaries(tmp_path, cache_dir, capsys):
    """The `make demo` path on a smaller plan: SmolLM2 fine-tune, every attack, base reference, canaries."""
    out = tmp_path / "demo"
    assert run_cli("demo", "--members", "10", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "fine-tuning SmolLM2-135M-Instruct" in printed and "fine-tuned SmolLM2-135M for 1 epoch on 10" in printed
    assert "bits exposed" in printed and "report.html" in printed
    assert "extrapolated to all 1,000,000 possible secrets" in printed  # not capped at log2(128) bits
    results = json.loads((out / "results.json").read_text())
    assert {"loss", "reference", "lowercase", "dc_pdd", "min_k_pp", "blind_bow"} <= set(results["attacks"])
    assert [c["repeats"] for c in results["canaries"]] == [1, 4, 16]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["kind"] == "finetune" and manifest["data"]["n_members"] == 10
