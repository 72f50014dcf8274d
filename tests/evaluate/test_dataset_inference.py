"""Dataset inference: significant for a trained-on suspect set, not for an unseen one or the false-positive run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from miakit.errors import MiakitError
from miakit.evaluate.dataset_inference import infer


def test_shifted_features_are_detected_and_equal_ones_are_not():
    rng = np.random.default_rng(0)
    validation = rng.normal(size=(200, 5))
    shifted = rng.normal(size=(200, 5)) + np.array([0.3, 0, 0, 0.2, 0])
    same = rng.normal(size=(200, 5))
    assert infer(shifted, validation, seed=1)["p_value"] < 0.01  # measured 0.002
    assert infer(same, validation, seed=1)["p_value"] > 0.05
    curve = infer(shifted, validation, seed=1)["curve"]
    assert [p["n"] for p in curve] == sorted(p["n"] for p in curve) and curve[-1]["n"] == 100
    assert curve[-1]["p_value"] < curve[0]["p_value"]  # more texts, more evidence
    with pytest.raises(MiakitError):
        infer(shifted[:5], validation)


def _write(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_infer_dataset_end_to_end(trained_scenario, tmp_path, cache_dir, capsys):
    from test_cli import run_cli

    members, nonmembers = trained_scenario["members"], trained_scenario["nonmembers"]
    suspect = _write(tmp_path / "suspect.jsonl", members[:60])
    validation = _write(tmp_path / "validation.jsonl", nonmembers[:60])
    out = tmp_path / "run"
    args = ("--model", trained_scenario["target"], "--suspect", suspect, "--validation", validation)
    assert run_cli("infer-dataset", *args, "--out", out) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["p_value"] < 0.05 and results["significant"]
    assert results["false_positive_p_value"] > 0.05 and not results["false_positive_significant"]
    assert results["curve"] and len(results["features"]) > 10
    for name in ("manifest.json", "pvalues.png", "report.html"):
        assert (out / name).is_file()

    unseen = _write(tmp_path / "unseen.jsonl", nonmembers[60:120])
    out2 = tmp_path / "run2"
    args = ("--model", trained_scenario["target"], "--suspect", unseen, "--validation", validation)
    assert run_cli("infer-dataset", *args, "--out", out2) == 0
    assert json.loads((out2 / "results.json").read_text())["p_value"] > 0.05
    assert "Dataset inference: p =" in capsys.readouterr().out
