"""``miakit demo`` end to end on a small plan (the default plan is what ``make demo`` runs)."""

import json

from miakit.demo import DemoPlan, split_passages
from test_cli import run_cli


def test_demo_builds_the_scenario_audits_it_and_reuses_it(tmp_path, cache_dir, capsys):
    out = tmp_path / "demo"
    assert run_cli("demo", "--members", "40", "--epochs", "2", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "40 passages" in printed and "What an attacker learns" in printed and "report.html" in printed
    results = json.loads((out / "results.json").read_text())
    assert {"loss", "reference", "min_k_pp", "blind_bow"} <= set(results["attacks"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["n_members"] == 40 and manifest["data"]["n_nonmembers"] == 40
    assert manifest["counts"]["forward_passes_computed"] > 0

    assert run_cli("demo", "--members", "40", "--epochs", "2", "--out", tmp_path / "again") == 0
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["counts"]["forward_passes_computed"] == 0  # models reused from the cache, signals from the store


def test_demo_split_is_disjoint_and_seeded():
    plan = DemoPlan(n_members=50, n_nonmembers=50, n_reference=100)
    members, nonmembers, reference = split_passages(plan)
    assert not set(members) & set(nonmembers) and not (set(members) | set(nonmembers)) & set(reference)
    assert split_passages(plan) == (members, nonmembers, reference)
