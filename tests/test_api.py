"""The Python API: ``miakit.audit`` returns metrics and scores as DataFrames."""

import numpy as np
import pandas as pd
import pytest

import miakit
from miakit.data import MembershipDataset, Sample
from miakit.errors import MiakitError
from miakit.targets.hf_causal import HFCausalLM


def scenario_samples(trained_scenario, n=40):
    members = [Sample(f"m{i}", t, 1) for i, t in enumerate(trained_scenario["members"][:n])]
    nonmembers = [Sample(f"n{i}", t, 0) for i, t in enumerate(trained_scenario["nonmembers"][:n])]
    return MembershipDataset(members + nonmembers, source="scenario")


def test_audit_returns_metrics_and_scores(trained_scenario, tmp_path, cache_dir):
    result = miakit.audit(
        str(trained_scenario["target"]),
        scenario_samples(trained_scenario),
        reference=[str(trained_scenario["reference"])],
        attacks=["loss", "reference", "min_k[k=0.1,0.2]"],
        out=str(tmp_path / "run"),
        bootstrap=200,
        progress=False,
    )
    assert isinstance(result.metrics, pd.DataFrame) and isinstance(result.scores, pd.DataFrame)
    assert set(result.metrics.index) == {
        "loss",
        "reference",
        "min_k[k=0.2]",  # the default, named because min_k appears twice
        "min_k[k=0.1]",
        "blind_bow",
        "blind_date",
        "blind_ngram",
    }
    assert {"auroc", "auroc_ci_low", "auroc_ci_high", "tpr_at_1pct_fpr"} <= set(result.metrics.columns)
    assert len(result.scores) == 80 and result.scores["label"].tolist() == [1] * 40 + [0] * 40
    loss = result.metrics.loc["loss"]
    assert 0.7 < loss["auroc"] <= 1.0 and loss["auroc_ci_low"] <= loss["auroc"] <= loss["auroc_ci_high"]
    assert result.metrics.loc["blind_bow", "auroc"] < 0.75  # same corpus, random split: no distribution shift
    assert result.report_path.is_file()
    assert result.manifest["references"][str(trained_scenario["reference"])]["fingerprint"]


def test_audit_with_an_in_memory_model(tiny_model, tiny_tokenizer, cache_dir):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="tiny")
    samples = [Sample(str(i), f"The king and the queen {i}.", i % 2) for i in range(10)]
    result = miakit.audit(target, samples, attacks=["loss"], write=False, bootstrap=10, progress=False)
    assert result.run_dir is None
    expected = [
        np.mean(
            tiny_model(**tiny_tokenizer(s.text, return_tensors="pt"))
            .logits.log_softmax(-1)[0, :-1]
            .gather(1, tiny_tokenizer(s.text, return_tensors="pt")["input_ids"][0, 1:, None])
            .detach()
            .numpy()
        )
        for s in samples
    ]
    np.testing.assert_allclose(result.scores["loss"], expected, rtol=1e-4)


def test_unlabelled_data_is_scored_without_metrics(tiny_model, tiny_tokenizer, cache_dir):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    samples = [Sample(str(i), f"The river {i} and the stone.") for i in range(5)]
    result = miakit.audit(target, samples, attacks=["loss", "zlib"], write=False, progress=False)
    assert result.metrics.empty and list(result.scores.columns) == ["id", "label", "loss", "zlib"]
    assert any("no labels" in w for w in result.warnings)


def test_reference_without_a_model_is_skipped_with_a_reason(tiny_model, tiny_tokenizer, cache_dir):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    samples = [Sample(str(i), f"The river {i} and the stone.", i % 2) for i in range(8)]
    result = miakit.audit(target, samples, attacks=["loss", "reference"], write=False, bootstrap=0, progress=False)
    assert "reference" in result.results["skipped"] and "--reference" in result.results["skipped"]["reference"]


def test_long_texts_are_windowed_and_warned_about(tiny_model, tiny_tokenizer, cache_dir):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer)
    long_text = " ".join(["the king and the queen of the river"] * 40)
    samples = [Sample("long", long_text, 1), *(Sample(str(i), f"The stone {i}.", i % 2) for i in range(5))]
    result = miakit.audit(target, samples, attacks=["loss"], write=False, bootstrap=0, progress=False)
    assert any("rolling windows" in w and "1 of 6" in w for w in result.warnings)
    assert np.isfinite(result.scores["loss"]).all()


def test_no_model_is_a_user_error():
    with pytest.raises(MiakitError):
        miakit.audit(None, [Sample("a", "b c", 1)])


def test_calibration_fraction_fits_recall_and_is_never_scored(trained_scenario, tmp_path, cache_dir):
    """ReCaLL's prefix comes from a held-out calibration split; those samples never appear in the scores."""
    from miakit.api import audit
    from miakit.data import MembershipDataset, Sample

    samples = [Sample(f"m{i}", t, 1) for i, t in enumerate(trained_scenario["members"][:30])]
    samples += [Sample(f"n{i}", t, 0) for i, t in enumerate(trained_scenario["nonmembers"][:30])]
    data = MembershipDataset(samples, source="test")
    result = audit(
        str(trained_scenario["target"]), data, attacks="loss,recall[n_shots=3]", calibration_fraction=0.2,
        out=str(tmp_path / "run"), progress=False, bootstrap=0,
    )  # fmt: skip
    calibration = result.results["calibration"]
    assert calibration["n_members"] == 6 and calibration["n_nonmembers"] == 6
    # the prefix holds the shots that fit the 128-token context beside a median calibration text, and says so
    shots = calibration["details"]["recall[n_shots=3]"]["shots"]
    assert 1 <= shots <= 3
    assert f"prefix of {shots} calibration non-members" in calibration["fitted"]["recall[n_shots=3]"]
    if shots < 3:
        assert any("of 3 prefix shots fit" in w and "128-token context" in w for w in result.warnings)
    assert len(result.scores) == 48
    unscored = {s.id for s in samples} - set(result.scores["id"])
    assert len(unscored) == 12  # the 12 calibration samples are exactly the ones not scored
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Calibration" in html and "never scored" in html

    without = audit(str(trained_scenario["target"]), data, attacks="loss,recall", progress=False, write=False)
    assert "recall" in without.results["skipped"] and "--calibration" in without.results["skipped"]["recall"]
