"""Dataset inference: significant for a trained-on suspect set, not for an unseen one or the false-positive run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from miakit.errors import MiakitError
from miakit.evaluate.dataset_inference import (
    SHIFT_WARNING_PREFIX,
    _fit_transform,
    _prepare,
    imputed_table,
    infer,
    suspect_shift,
    validation_vs_itself,
)


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


def test_infinite_features_clip_to_the_bounds_and_inputs_are_not_changed():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(100, 2))
    train[0, 0] = -np.inf  # e.g. a text whose log-likelihood is -inf: the lowest value, not an average one
    train[1, 1] = np.nan
    bounds = _fit_transform(train)
    low, high = bounds[0], bounds[1]
    finite = train[np.isfinite(train[:, 0]), 0]
    assert low[0] == pytest.approx(np.percentile(finite, 2.5)) and high[0] == pytest.approx(np.percentile(finite, 97.5))
    z = _prepare(np.array([[-np.inf, np.nan], [np.inf, 0.0]]), *bounds)
    assert z[0, 0] == pytest.approx((low[0] - bounds[2][0]) / bounds[3][0])
    assert z[0, 0] < -1.5
    assert z[1, 0] > 1.5 and z[0, 1] == 0.0  # NaN (missing) is the mean
    suspect = rng.normal(size=(20, 2))
    suspect[0, 0] = np.inf
    before = suspect.copy()
    infer(suspect, rng.normal(size=(20, 2)))
    np.testing.assert_array_equal(suspect, before)  # the caller's array is not modified


def test_constant_features_are_an_error_not_a_silent_nan():
    with pytest.raises(MiakitError, match="no variation to test"):
        infer(np.ones((20, 3)), np.ones((20, 3)))


def test_false_positive_run_shuffles_a_sorted_validation_set():
    """A validation file ordered by, say, date: its first half against its second would look significant."""
    rng = np.random.default_rng(3)
    validation = rng.normal(size=(200, 3))
    validation = validation[np.argsort(-validation[:, 0])]  # descending: the first half scores higher
    assert infer(validation[:100], validation[100:], seed=1)["p_value"] < 1e-6  # file order: a false positive
    # shuffled, it is a null test: about 5% of seeds come out below 0.05 (file order: all of them)
    p_values = np.array([validation_vs_itself(validation, seed=seed)["p_value"] for seed in range(40)])
    assert (p_values < 0.05).mean() <= 0.15 and np.median(p_values) > 0.2


def test_imputed_counts_are_the_missing_values_per_feature_and_side():
    rng = np.random.default_rng(4)
    suspect = rng.normal(size=(20, 3)) + 0.5
    validation = rng.normal(size=(24, 3))
    suspect[[0, 3], 0] = np.nan
    suspect[5, 2] = np.nan
    suspect[2, 0] = -np.inf  # clipped to the lower bound, not imputed
    validation[[1, 2, 7], 2] = np.nan
    suspect[:, 1] = np.nan  # a feature missing everywhere: every value of it is the (undefined) mean
    validation[:, 1] = np.nan
    result = infer(suspect, validation, seed=0)
    assert result["imputed_suspect"] == [2, 20, 1]
    assert result["imputed_validation"] == [0, 24, 3]
    assert imputed_table(["loss", "zlib", "min_k"], result) == [
        {"feature": "loss", "suspect": 2, "validation": 0},
        {"feature": "zlib", "suspect": 20, "validation": 24},
        {"feature": "min_k", "suspect": 1, "validation": 3},
    ]


def _bundled_split(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Two disjoint random draws of ``n`` passages each from the bundled corpus (one distribution)."""
    import random

    from miakit.scenarios import load_bundled_passages

    texts = random.Random(seed).sample([p["text"] for p in load_bundled_passages()], 2 * n)
    return texts[:n], texts[n:]


def test_shift_warning_fires_when_suspect_texts_differ_from_validation():
    suspect, validation = _bundled_split(40, seed=0)
    shift = suspect_shift([t.lower() for t in suspect], validation, seed=0)
    assert set(shift["baselines"]) == {"blind_bow", "blind_date", "blind_ngram"}
    strongest = shift["baselines"][shift["strongest"]]
    assert strongest["ci_low"] > 0.55 and strongest["auroc"] > 0.8  # measured: blind_ngram 0.958 [0.915, 0.986]
    warning = shift["warning"]
    assert warning.startswith(SHIFT_WARNING_PREFIX) and "suspect and validation texts differ" in warning
    assert "not evidence that the suspect texts were trained on" in warning and shift["strongest"] in warning


def test_shift_warning_is_silent_on_a_random_split_of_one_corpus():
    suspect, validation = _bundled_split(40, seed=0)
    shift = suspect_shift(suspect, validation, seed=0)
    # the rule's null rate, measured: 2 of 30 random 40/40 splits fired (out-of-fold AUROC sd 0.08 under the
    # null, wider than the bootstrap CI assumes); this seeded split: CI lower bounds 0.34, 0.50, 0.30
    assert shift["warning"] is None and shift["strongest"] is None
    # a baseline with every score equal (e.g. no text mentions a year) ranks nothing: no interval, and it says why
    assert all(b["ci_low"] <= 0.55 if b["ci_low"] is not None else b["unranked"] for b in shift["baselines"].values())


def test_shift_check_that_cannot_run_says_so_instead_of_stopping():
    shift = suspect_shift(["!"] * 10, ["?"] * 10)
    assert shift["baselines"] == {} and shift["warning"] is None
    assert "split is unchecked" in shift["note"]


def test_dataset_report_opens_with_the_shift_warning_and_lists_imputed_features(tmp_path):
    from miakit.report.dataset import write_dataset_inference

    warning = f"{SHIFT_WARNING_PREFIX} the suspect and validation texts differ in distribution: <b>x</b>"
    baselines = {"blind_bow": {"auroc": 0.91, "ci_low": 0.85, "ci_high": 0.96, "description": "a bag-of-words"}}
    shift = {"baselines": baselines, "strongest": "blind_bow", "warning": warning, "threshold": 0.55, "note": None}
    results = {
        "p_value": 1e-9, "false_positive_p_value": 0.4, "alpha": 0.05, "significant": True,
        "false_positive_significant": False, "curve": [{"n": 10, "p_value": 0.01}], "false_positive_curve": [],
        "n_suspect": 20, "n_validation": 24, "features": ["loss", "zlib"], "shift": shift,
        "imputed": [{"feature": "loss", "suspect": 0, "validation": 0},
                    {"feature": "zlib", "suspect": 3, "validation": 1}],
    }  # fmt: skip
    write_dataset_inference(tmp_path / "run", results, {})
    html = (tmp_path / "run" / "report.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # escaped
    assert html.index("differ in distribution") < html.index("p = 1e-09")  # the warning comes first
    assert "[0.850, 0.960]" in html and "<td>zlib</td><td>3</td><td>1</td>" in html
    assert "<td>loss</td>" not in html  # nothing imputed for loss: not listed

    del results["shift"], results["imputed"]  # a run written without these keys still renders
    write_dataset_inference(tmp_path / "old", results, {})
    assert "distribution check" not in (tmp_path / "old" / "report.html").read_text()


def test_too_few_validation_texts_fail_before_any_model_is_loaded(tmp_path):
    from miakit.api import infer_dataset

    suspect = _write(tmp_path / "s.jsonl", [f"suspect text {i}" for i in range(10)])
    validation = _write(tmp_path / "v.jsonl", [f"validation text {i}" for i in range(10)])
    with pytest.raises(MiakitError, match="at least 8 suspect texts and 16 validation texts"):
        infer_dataset(str(tmp_path / "no-such-model"), str(suspect), str(validation), write=False)


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
    # measured: 2.1e-40 and, for the false-positive run, 0.13
    assert results["false_positive_p_value"] > 0.05 and not results["false_positive_significant"]
    assert results["curve"] and len(results["features"]) > 10
    for name in ("manifest.json", "pvalues.png", "report.html"):
        assert (out / name).is_file()

    unseen = _write(tmp_path / "unseen.jsonl", nonmembers[60:120])
    out2 = tmp_path / "run2"
    args = ("--model", trained_scenario["target"], "--suspect", unseen, "--validation", validation)
    assert run_cli("infer-dataset", *args, "--out", out2) == 0
    assert json.loads((out2 / "results.json").read_text())["p_value"] > 0.05  # measured 0.54
    assert "Dataset inference: p =" in capsys.readouterr().out
