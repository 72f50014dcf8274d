"""The evaluator stage (evaluate_run) on hand-built labels and scores: what results.json gets, and when."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from miakit.errors import MiakitError
from miakit.evaluate import BLIND_WARNING_PREFIX, EvaluationSettings, evaluate_run, evaluate_scores
from miakit.evaluate.evaluation import NO_LABELS, TOO_FEW
from miakit.report.files import to_jsonable

FAST = EvaluationSettings(n_bootstrap=100, seed=3)


def sample_level(seed: int = 0, n: int = 100):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    columns = {
        "loss": labels * 1.2 + rng.normal(size=2 * n),
        "zlib": labels * 0.6 + rng.normal(size=2 * n),
        "noise": rng.normal(size=2 * n),
    }
    blind = {"blind_bow": rng.uniform(size=2 * n)}  # a blind baseline at chance
    return labels, columns, blind


def test_every_column_is_evaluated_like_evaluate_scores_and_the_figures_are_there():
    labels, columns, blind = sample_level()
    run = evaluate_run(labels, columns, blind=blind, settings=FAST)
    assert run.kinds == {"loss": "attack", "zlib": "attack", "noise": "attack", "blind_bow": "baseline"}
    for name, scores in {**columns, **blind}.items():
        assert run.evaluations[name].to_json() == evaluate_scores(labels, scores, n_bootstrap=100, seed=3).to_json()
    assert run.warnings == []  # the blind baseline is at chance
    assert run.selection["attack"] == "loss" and run.selection["among"] == 3 and run.selection["optimistic"]
    assert "optimistic" in run.selection["note"] and "of 3 attacks" in run.selection["note"]
    assert run.comparison["best"] == "loss" and set(run.comparison["pairs"]) == {"zlib", "noise"}
    assert run.epsilon["attack"] == "loss" and not run.epsilon["withheld"] and run.epsilon["epsilon_lower_bound"] > 0
    assert run.epsilon["trials"].startswith("samples") and run.resampling["unit"] == "sample"
    assert run.documents is None and run.document_table is None
    figures = run.results_figures()
    assert set(figures) == {"selection", "resampling", "comparison", "epsilon"}
    json.dumps(to_jsonable(figures), allow_nan=False)


def test_a_separating_blind_baseline_warns_first_and_withholds_epsilon():
    labels, columns, _ = sample_level()
    rng = np.random.default_rng(1)
    blind = {"blind_bow": labels * 2.0 + rng.normal(size=len(labels)), "blind_date": rng.normal(size=len(labels))}
    run = evaluate_run(labels, columns, blind=blind, settings=FAST)
    assert run.warnings[0].startswith(BLIND_WARNING_PREFIX) and "blind_bow" in run.warnings[0]
    eps = run.epsilon
    assert eps["withheld"] and eps["attack"] == "loss" and "epsilon_lower_bound" not in eps
    assert "blind baseline" in eps["reason"] and "randomised" in eps["reason"]


def test_a_declared_shift_withholds_epsilon_with_the_reason():
    labels, columns, blind = sample_level()
    shift = "members are from before 2017, non-members from after 2023"
    eps = evaluate_run(labels, columns, blind=blind, shift=shift, settings=FAST).epsilon
    assert eps["withheld"] and "declares a distribution shift" in eps["reason"] and shift in eps["reason"]
    assert "epsilon_lower_bound" not in eps


def test_one_attack_is_not_selected_and_not_compared():
    labels, columns, blind = sample_level()
    run = evaluate_run(labels, {"loss": columns["loss"]}, blind=blind, settings=FAST)
    assert run.selection["among"] == 1 and not run.selection["optimistic"]
    assert run.comparison is None and run.epsilon["selected_among"] == 1


@pytest.mark.parametrize(
    ("labels", "message"),
    [([-1, -1, -1, -1], NO_LABELS), ([1, 0, 0, 0, 0], TOO_FEW), ([1, 1, 0, 0, -1], "1 of 5 samples have no label")],
)
def test_without_enough_labels_only_the_warning(labels, message):
    n = len(labels)
    run = evaluate_run(np.array(labels), {"loss": np.arange(n, dtype=float)}, blind={}, settings=FAST)
    assert run.evaluations == {} and run.results_figures() == {}
    assert any(w.startswith(message) for w in run.warnings)


def test_bad_inputs_are_user_errors():
    with pytest.raises(MiakitError, match="labels must be"):
        evaluate_run(np.array([1, 2]), {"loss": np.zeros(2)}, blind={})
    with pytest.raises(MiakitError, match="has 3 scores for 2 samples"):
        evaluate_run(np.array([1, 0]), {"loss": np.zeros(3)}, blind={})
    with pytest.raises(MiakitError, match="groups for"):
        evaluate_run(np.array([1, 0]), {"loss": np.zeros(2)}, blind={}, groups=["a"])


def documents(seed: int = 0, n_docs: int = 12, chunks: int = 4):
    """Chunked documents: per-document effect shared by the chunks of both attacks."""
    rng = np.random.default_rng(seed)
    doc_labels = np.r_[np.ones(n_docs, dtype=int), np.zeros(n_docs, dtype=int)]
    labels = np.repeat(doc_labels, chunks)
    effect = np.repeat(rng.normal(size=2 * n_docs), chunks)
    groups = [f"doc{i:02d}" for i in np.repeat(np.arange(2 * n_docs), chunks)]
    columns = {
        "loss": effect + labels + 0.5 * rng.normal(size=len(labels)),
        "zlib": effect + 0.5 * labels + 0.5 * rng.normal(size=len(labels)),
    }
    return labels, columns, groups


def test_documents_count_dropped_chunks_and_match_a_hand_aggregation():
    labels, columns, groups = documents()
    columns["loss"][[0, 1]] = np.nan  # two chunks of doc00
    columns["loss"][4:8] = np.nan  # every chunk of doc01: unscorable
    run = evaluate_run(labels, columns, blind={}, groups=groups, settings=FAST)
    docs = run.documents
    assert docs["n_documents"] == 24 and docs["n_member_documents"] == 12 and docs["chunks_per_document"] == 4
    assert docs["dropped_chunks"]["loss"] == {"chunks": 6, "documents": 2, "unscorable_documents": 1}
    assert docs["dropped_chunks"]["zlib"] == {"chunks": 0, "documents": 0, "unscorable_documents": 0}
    assert docs["reference"]["loss"] == "the other evaluated documents" and docs["nan_policy"] == "lowest"
    # mean statistic by hand: pandas' mean skips NaN; the unscorable document ranks lowest (policy "lowest")
    frame = pd.DataFrame({"doc": groups, "label": labels, "score": columns["loss"]}).groupby("doc", sort=False)
    per_doc = frame.agg(label=("label", "first"), score=("score", "mean"))
    by_hand = roc_auc_score(per_doc["label"], per_doc["score"].fillna(per_doc["score"].min() - 1))
    assert docs["methods"]["mean"]["loss"]["auroc"]["value"] == pytest.approx(by_hand)
    table = run.document_table
    assert table["loss:nan_chunks"].tolist()[:3] == [2, 4, 0] and np.isnan(table.loc[1, "loss:mean"])
    assert table["loss:mean"].tolist()[0] == pytest.approx(np.mean(columns["loss"][2:4]))
    # chunks are not independent: intervals, comparison and epsilon count documents
    assert run.resampling["unit"] == "document" and run.resampling["n_member_documents"] == 12
    assert run.evaluations["loss"].bootstrap_unit == "document" and run.comparison["bootstrap_unit"] == "document"
    assert run.epsilon["trials"].startswith("documents") and run.epsilon["n_members"] == 12
    assert set(run.results_figures()) == {"selection", "resampling", "comparison", "epsilon", "documents"}


def test_document_level_evaluation_follows_the_nan_policy():
    labels, columns, groups = documents(seed=1)
    columns["loss"][4:8] = np.nan  # doc01 has no scorable chunk
    omit = evaluate_run(labels, columns, blind={}, groups=groups, settings=EvaluationSettings(100, 0, "omit"))
    mean = omit.documents["methods"]["mean"]["loss"]["auroc"]
    assert "1 NaN score(s) (1 members, 0 non-members) omitted" in mean["note"]
    with pytest.raises(MiakitError, match="NaN"):
        evaluate_run(labels, columns, blind={}, groups=groups, settings=EvaluationSettings(100, 0, "raise"))


def test_known_non_member_chunks_are_the_reference_where_given():
    labels, columns, groups = documents(seed=2)
    known_scores = np.r_[np.random.default_rng(0).normal(size=20), np.nan]
    known = {"scores": {"loss": known_scores}, "n_chunks": 21, "n_documents": 5}
    run = evaluate_run(labels, columns, blind={}, groups=groups, known=known, settings=FAST)
    docs = run.documents
    assert docs["reference"] == {
        "loss": "known non-members: 21 chunks of 5 calibration documents",
        "zlib": "the other evaluated documents",
    }
    assert docs["dropped_chunks"]["loss"]["reference_chunks"] == 1
    assert "loss:p_value" in run.document_table and "zlib:p_value" not in run.document_table


def test_too_few_documents_give_a_note():
    labels, columns, groups = documents(n_docs=1, chunks=4)
    run = evaluate_run(labels, columns, blind={}, groups=groups, settings=FAST)
    assert run.documents == {"note": "fewer than 2 member or non-member documents: no document-level metrics"}
