"""Run-directory files: exact results.json layout, lossless score tables, atomic writes, read_run errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from report_helpers import HOSTILE

from miakit.errors import MiakitError
from miakit.evaluate import BLIND_WARNING_PREFIX, METRIC_KEYS, evaluate_scores
from miakit.report import build_results, read_run, read_scores_csv, write_run_files
from miakit.report.files import to_jsonable, write_json

COUNT_KEYS = {"n_members", "n_nonmembers", "nan_members", "nan_nonmembers", "inf_members", "inf_nonmembers"}


def test_all_files_written(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert names == {"results.json", "scores.csv", "scores.parquet", "manifest.json"}


def test_results_json_exact_layout(run_dir, run_parts):
    _, scores, _ = run_parts
    text = (run_dir / "results.json").read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in results.json"))
    assert set(doc) == {"attacks", "warnings", "details", "skipped"}
    names = list(scores.columns[2:])
    assert list(doc["attacks"]) == names
    for metrics in doc["attacks"].values():
        assert list(metrics) == list(METRIC_KEYS)
        for entry in metrics.values():
            assert set(entry) == {"value", "ci_low", "ci_high", "estimable", "note"}
    assert doc["attacks"]["loss"]["tpr_at_0.1pct_fpr"] == {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "estimable": False,
        "note": "not estimable: 200 non-members < 1/0.001; "
        "2 NaN score(s) (1 members, 1 non-members) ranked lowest (predicted non-member)",
    }
    for name, detail in doc["details"].items():
        assert set(detail) == COUNT_KEYS | {"kind"}
        assert detail["kind"] == ("baseline" if name == "blind_bow" else "attack")
    assert doc["details"]["loss"]["nan_members"] == 1 and doc["details"]["loss"]["inf_members"] == 1
    assert doc["warnings"][0].startswith(BLIND_WARNING_PREFIX)  # blind warning first
    assert doc["skipped"]["gradnorm"] == "needs capability GRADIENTS"


def test_build_results_defaults_kind_and_rejects_unknown():
    ev = evaluate_scores([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], n_bootstrap=0)
    doc = build_results({"loss": ev, "blind_bow": ev})
    assert doc["details"]["loss"]["kind"] == "attack"
    assert doc["details"]["blind_bow"]["kind"] == "baseline"
    assert doc["warnings"] == [] and doc["skipped"] == {}
    with pytest.raises(MiakitError, match="kind"):
        build_results({"loss": ev}, kinds={"loss": "oracle"})


def test_scores_round_trip_exactly(run_dir, run_parts):
    _, scores, _ = run_parts
    from_parquet = pd.read_parquet(run_dir / "scores.parquet")
    from_csv = read_scores_csv(run_dir / "scores.csv")
    pd.testing.assert_frame_equal(from_parquet, scores, check_dtype=False)
    pd.testing.assert_frame_equal(from_csv, scores, check_dtype=False)
    assert from_csv["id"].tolist()[:2] == [HOSTILE, "NA"]
    assert np.isinf(from_csv["loss"][3]) and np.isnan(from_csv["loss"][2])
    assert from_csv["min_k[k=0.1]"].to_numpy().tobytes() == scores["min_k[k=0.1]"].to_numpy().tobytes()


def test_read_run_returns_what_was_written(run_dir, run_parts):
    results, scores, manifest = run_parts
    got_results, got_scores, got_manifest = read_run(run_dir)
    assert got_results == json.loads(json.dumps(to_jsonable(results)))
    pd.testing.assert_frame_equal(got_scores, scores, check_dtype=False)
    assert got_manifest["score"] is None  # NaN became null
    assert got_manifest["model"] == manifest["model"]


def test_read_run_on_non_run_directory(tmp_path):
    with pytest.raises(MiakitError, match="not a miakit run directory"):
        read_run(tmp_path)
    with pytest.raises(MiakitError, match="not a directory"):
        read_run(tmp_path / "missing")
    (tmp_path / "results.json").write_text("{not json")
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "scores.csv").write_text("id,label\n")
    with pytest.raises(MiakitError, match="not readable JSON"):
        read_run(tmp_path)
    (tmp_path / "results.json").write_text('{"attacks": {}}')
    with pytest.raises(MiakitError, match="lacks the keys"):
        read_run(tmp_path)


def test_read_run_falls_back_to_csv(run_dir, run_parts):
    (run_dir / "scores.parquet").unlink()
    _, scores, _ = read_run(run_dir)
    pd.testing.assert_frame_equal(scores, run_parts[1], check_dtype=False)


def test_scores_table_needs_id_and_label_first(tmp_path, run_parts):
    results, scores, manifest = run_parts
    with pytest.raises(MiakitError, match="'id', 'label'"):
        write_run_files(tmp_path / "x", results, scores[["label", "id", "loss"]], manifest)


def test_atomic_write_leaves_old_file_and_no_temp_on_failure(tmp_path):
    path = tmp_path / "doc.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object.__new__(type("Unjsonable", (), {"__str__": None}))})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_to_jsonable_is_nan_free():
    doc = to_jsonable({"a": np.float32(1.5), "b": [np.nan, np.inf, np.int64(3)], "c": np.array([1, 2])})
    assert doc == {"a": 1.5, "b": [None, None, 3], "c": [1, 2]}
    json.dumps(doc, allow_nan=False)


def test_written_files_get_ordinary_permissions(run_dir):
    probe = run_dir / "probe"
    probe.write_text("x")  # what the umask gives a plain file
    for name in ("results.json", "scores.csv", "scores.parquet", "manifest.json"):
        assert (run_dir / name).stat().st_mode == probe.stat().st_mode, name
