"""The quick demo runs every default attack: its scenario holds a calibration split (further trained members,
further held-out non-members), the console and report say what each fitted attack took from it, and the report
is titled with the scenario's name, not a cache path."""

import html
import json
import re
from pathlib import Path

from miakit.run.planner import default_attack_specs
from test_cli import run_cli

FITTED = ("recall", "con_recall", "activation_probe")


def test_quick_demo_runs_every_default_attack_with_its_calibration_split(tmp_path, cache_dir, capsys):
    out = tmp_path / "demo"
    assert run_cli("demo", "--quick", "--members", "40", "--epochs", "2", "--out", out) == 0
    printed = " ".join(capsys.readouterr().out.split())
    results = json.loads((out / "results.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())

    assert not any("calibration" in reason for reason in results["skipped"].values()), results["skipped"]
    defaults = {re.sub(r"\[.*", "", spec) for spec in default_attack_specs()}
    ran = {re.sub(r"\[.*", "", column) for column in results["attacks"]}
    assert defaults <= ran, defaults - ran

    scenario_dir = Path(manifest["scenario"]["directory"])
    scenario = json.loads((scenario_dir / "scenario.json").read_text())
    calibration = [json.loads(line) for line in (scenario_dir / "calibration.jsonl").read_text().splitlines()]
    evaluated = [json.loads(line) for line in (scenario_dir / "dataset.jsonl").read_text().splitlines()]
    assert sorted(r["label"] for r in calibration) == [0] * 20 + [1] * 20
    assert not {r["text"] for r in calibration} & {r["text"] for r in evaluated}  # never scored
    assert scenario["n_calibration_members"] == 20 and scenario["training"]["n_texts"] == 40 + 20  # trained on

    fitted = results["calibration"]["fitted"]
    assert set(FITTED) <= set(fitted)
    assert results["calibration"]["n_members"] == 20 and results["calibration"]["n_nonmembers"] == 20
    assert "calibration set: " in printed and "(20 members, 20 non-members), never scored" in printed
    for name in FITTED:
        assert f"{name}: fitted on the calibration set (40 samples): {' '.join(fitted[name].split())}" in printed
    assert "calibration non-members (calibration-nonmember-" in fitted["recall"]

    name = scenario["name"]
    assert name.startswith("miakit demo --quick") and manifest["scenario"]["name"] == name
    report = html.unescape((out / "report.html").read_text())
    assert f"<title>miakit report: {name}</title>" in report and f"<h1>miakit report: {name}</h1>" in report
    assert str(cache_dir) not in report.split("</h1>")[0]  # no cache path in the title
