"""Document inference: chunk scores aggregated per group, against independent computations and end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from miakit.errors import MiakitError
from miakit.evaluate.documents import chunk_text, document_scores


def test_statistics_match_their_definitions():
    groups = ["a", "a", "b", "b", "b", "c"]
    labels = [1, 1, 0, 0, 0, 1]
    scores = [0.9, 0.5, 0.1, 0.4, np.nan, 0.7]
    ids, doc_labels, mean = document_scores(groups, labels, scores, "mean")
    assert ids == ["a", "b", "c"] and doc_labels.tolist() == [1, 0, 1]
    # b's NaN chunk is left out: the mean of 0.1 and 0.4
    assert mean.tolist() == pytest.approx([0.7, 0.25, 0.7])
    _, _, above = document_scores(groups, labels, scores, "above")
    # a: median of the others' finite chunks (0.1, 0.4, 0.7) is 0.4 -> both chunks above
    assert above[0] == 1.0 and above[1] == pytest.approx(0.0)
    _, _, mwu = document_scores(groups, labels, scores, "mwu")
    # c (0.7) against a's and b's scored chunks (0.9, 0.5, 0.1, 0.4): beats 3 of 4
    assert mwu[2] == pytest.approx(3 / 4)
    with pytest.raises(MiakitError, match="mixes member and non-member"):
        document_scores(["a", "a"], [1, 0], [0.1, 0.2])


def test_statistics_against_known_non_member_chunks():
    groups = ["a", "a", "b", "c", "c", "c"]
    labels = [1, 1, 0, 1, 1, 1]
    scores = [0.9, 0.2, 0.5, 0.6, np.nan, 0.3]
    known = [0.1, 0.4, 0.55, np.nan]
    _, _, mwu = document_scores(groups, labels, scores, "mwu", reference=known)
    # NaN chunks left out on both sides; a: 0.9 beats all 3, 0.2 beats 0.1 -> 4 / 6; c: 0.6 and 0.3 likewise
    assert mwu.tolist() == pytest.approx([4 / 6, 2 / 3, 4 / 6])
    _, _, above = document_scores(groups, labels, scores, "above", reference=known)
    # threshold = median of the finite known scores (0.1, 0.4, 0.55) = 0.4; c: one of its two scored chunks
    assert above.tolist() == pytest.approx([0.5, 1.0, 0.5])
    _, _, mean = document_scores(groups, labels, scores, "mean", reference=known)
    assert mean[0] == pytest.approx(0.55)  # the mean ignores the reference
    with pytest.raises(MiakitError, match="reference for document scores is empty"):
        document_scores(groups, labels, scores, "mwu", reference=[])
    with pytest.raises(MiakitError, match="reference for document scores is empty"):
        document_scores(groups, labels, scores, "mwu", reference=[np.nan])


@pytest.mark.parametrize("method", ["mean", "above", "mwu"])
def test_one_unscorable_chunk_does_not_sink_a_member_document(method):
    """m1 = [5, 5, NaN], n1 = [0, 0], m2 = [4, 4], n2 = [1, 1]: counting the NaN chunk as -inf ranked m1 below
    every non-member (mean -inf); left out, both members outrank both non-members."""
    from sklearn.metrics import roc_auc_score

    groups = ["m1", "m1", "m1", "n1", "n1", "m2", "m2", "n2", "n2"]
    labels = [1, 1, 1, 0, 0, 1, 1, 0, 0]
    scores = [5, 5, np.nan, 0, 0, 4, 4, 1, 1]
    ids, doc_labels, doc_scores = document_scores(groups, labels, scores, method)
    assert ids == ["m1", "n1", "m2", "n2"]
    assert roc_auc_score(doc_labels, doc_scores) == 1.0
    if method == "mean":
        assert doc_scores.tolist() == [5.0, 0.0, 4.0, 1.0]


def test_a_document_without_scored_chunks_is_nan_and_counted():
    from miakit.evaluate.documents import nan_chunk_counts

    groups = ["a", "a", "b", "c", "c"]
    scores = [np.nan, np.nan, 1.0, np.nan, 2.0]
    for method in ("mean", "above", "mwu"):
        _, _, values = document_scores(groups, [1, 1, 0, 1, 1], scores, method)
        assert np.isnan(values[0]) and not np.isnan(values[1:]).any(), method
    ids, n_chunks, n_nan = nan_chunk_counts(groups, scores)
    assert ids == ["a", "b", "c"] and n_chunks.tolist() == [2, 1, 2] and n_nan.tolist() == [2, 0, 1]


def test_document_table_p_values():
    from scipy.stats import mannwhitneyu

    from miakit.evaluate.documents import document_table

    groups = ["a", "a", "a", "b", "b"]
    scores = {"loss": np.array([3.0, 2.5, 4.0, 0.1, np.nan]), "zlib": np.array([1.0, 2.0, 3.0, 4.0, 5.0])}
    known = {"loss": np.array([0.0, 0.5, 1.0, 1.5, 0.2, 0.3])}
    table = document_table(groups, [1, 1, 1, 0, 0], scores, known)
    assert table["document"].tolist() == ["a", "b"] and table["n_chunks"].tolist() == [3, 2]
    expected = mannwhitneyu([3.0, 2.5, 4.0], known["loss"], alternative="greater").pvalue
    assert table.loc[0, "loss:p_value"] == pytest.approx(expected)
    assert table.loc[0, "loss:p_value"] < 0.05 < table.loc[1, "loss:p_value"]
    assert table.loc[0, "loss:mwu"] == 1.0 and "zlib:p_value" not in table  # no known reference for zlib
    # b's NaN chunk is left out of its mean and its p-value, and counted
    assert table.loc[1, "loss:mean"] == pytest.approx(0.1) and table["loss:nan_chunks"].tolist() == [0, 1]
    assert table.loc[1, "loss:p_value"] == pytest.approx(
        mannwhitneyu([0.1], known["loss"], alternative="greater").pvalue
    )
    assert table["zlib:nan_chunks"].tolist() == [0, 0]


def test_chunk_text():
    assert chunk_text("a b c d e", 2) == ["a b", "c d", "e"]
    assert chunk_text("", 3) == [""]


@pytest.fixture(scope="module")
def weak_scenario(tmp_path_factory):
    """A tiny GPT-2 trained briefly (4 epochs) on 192 passages: weak evidence per passage."""
    import random

    from miakit.scenarios import load_bundled_passages, train_tiny_gpt

    pool = random.Random(8).sample([p["text"] for p in load_bundled_passages()], 384)
    members, nonmembers = pool[:192], pool[192:]
    target = train_tiny_gpt(members, tmp_path_factory.mktemp("weak"), epochs=4, seed=0, num_threads=1)
    return {"target": target, "members": members, "nonmembers": nonmembers}


def test_document_auroc_rises_with_chunks_per_document(weak_scenario, tmp_path, cache_dir):
    """Documents of k passages of a weakly trained tiny model: more chunks per document, more evidence, by either
    document method (one audit computes both)."""
    from miakit.api import audit

    members, nonmembers = weak_scenario["members"], weak_scenario["nonmembers"]
    aurocs = {}
    for k in (1, 8):
        rows = [
            {"id": f"{tag}{i}", "text": t, "label": label, "group": f"{tag}doc{i // k}"}
            for tag, texts, label in (("m", members, 1), ("n", nonmembers, 0))
            for i, t in enumerate(texts)
        ]
        data = tmp_path / f"docs{k}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = audit(str(weak_scenario["target"]), str(data), attacks="loss", bootstrap=0, progress=False,
                       out=str(tmp_path / f"run{k}"))  # fmt: skip
        if k == 1:  # one passage per document: documents are the samples, and no document section is made
            assert "documents" not in result.results
            aurocs[1] = result.results["attacks"]["loss"]["auroc"]["value"]
            continue
        for method in ("mean", "mwu"):
            aurocs[method] = result.results["documents"]["methods"][method]["loss"]["auroc"]["value"]
        assert result.results["documents"]["n_documents"] == 2 * 192 // k
    # measured: 0.670 per passage; 8 per document 0.931 (mean), 0.944 (mwu)
    assert aurocs["mean"] > aurocs[1] + 0.1 and aurocs["mwu"] > aurocs[1] + 0.1, aurocs


def test_known_non_member_documents_are_the_mwu_reference(weak_scenario, tmp_path, cache_dir):
    """With --calibration-fraction on grouped data, whole documents are held out, their non-member chunks are
    scored, and each evaluated document's mwu statistic is its chunks against those known chunks."""
    from sklearn.metrics import roc_auc_score

    from miakit.api import audit
    from miakit.data import load_dataset
    from miakit.data.calibration import split_calibration

    k = 8
    rows = [
        {"id": f"{tag}{i}", "text": t, "label": label, "group": f"{tag}doc{i // k}"}
        for tag, texts, label in (("m", weak_scenario["members"], 1), ("n", weak_scenario["nonmembers"], 0))
        for i, t in enumerate(texts)
    ]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    target = str(weak_scenario["target"])
    result = audit(target, str(data), attacks="loss", bootstrap=0, progress=False, calibration_fraction=0.25,
                   out=str(tmp_path / "run"))  # fmt: skip
    docs = result.results["documents"]
    held = split_calibration(load_dataset(str(data)), fraction=0.25, seed=0).calibration
    known = [s for s in held if s.label == 0]
    assert len({s.group for s in held}) == 12 and len(known) == 6 * k
    assert docs["reference"]["loss"] == f"known non-members: {6 * k} chunks of 6 calibration documents"
    assert docs["reference"]["blind_bow"] == "the other evaluated documents"
    assert docs["n_documents"] == 48 - 12

    # independent: LOSS of the known chunks (a separate audit on them), U statistic per document, AUROC
    known_run = audit(target, [s for s in known], attacks="loss", bootstrap=0, progress=False, write=False)
    known_scores = known_run.scores["loss"].to_numpy()
    per_doc: dict[str, list[float]] = {}
    labels: dict[str, int] = {}
    ids = result.scores["id"].tolist()
    group_of = {r["id"]: r["group"] for r in rows}
    for sid, label, score in zip(ids, result.scores["label"], result.scores["loss"], strict=True):
        per_doc.setdefault(group_of[sid], []).append(score)
        labels[group_of[sid]] = int(label)
    u = {
        g: np.mean([[float(a > b) + 0.5 * float(a == b) for b in known_scores] for a in v]) for g, v in per_doc.items()
    }
    expected = roc_auc_score([labels[g] for g in u], [u[g] for g in u])
    assert docs["methods"]["mwu"]["loss"]["auroc"]["value"] == pytest.approx(expected, abs=1e-12)
    assert expected > 0.8  # measured: see the note of issue 5
    assert (
        "known non-members: 48 chunks of 6 calibration documents (loss)"
        in (tmp_path / "run" / "report.html").read_text()
    )
    table = pd.read_csv(tmp_path / "run" / "documents.csv")
    assert len(table) == 36 and table["n_chunks"].eq(k).all()
    assert table["loss:mwu"].to_numpy() == pytest.approx([u[g] for g in table["document"]])
    p = table.groupby("label")["loss:p_value"].median()
    assert p[1] < 0.05 < p[0]  # a trained-on document stands out against known non-members; a held-out one not


def test_chunk_words_cuts_long_samples_into_documents(trained_scenario, tmp_path, cache_dir):
    from test_cli import run_cli

    rows = [
        {"id": f"m{i}", "text": " ".join(trained_scenario["members"][3 * i : 3 * i + 3]), "label": 1} for i in range(6)
    ]
    rows += [
        {"id": f"n{i}", "text": " ".join(trained_scenario["nonmembers"][3 * i : 3 * i + 3]), "label": 0}
        for i in range(6)
    ]
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    args = ("--model", trained_scenario["target"], "--data", data, "--chunk-words", "20", "--attacks", "loss")
    assert run_cli("audit", *args, "--out", out, "--bootstrap", "50") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["documents"]["n_documents"] == 12 and results["documents"]["chunks_per_document"] > 3
    import pandas as pd

    scores = pd.read_csv(out / "scores.csv")
    assert scores["id"].str.contains("#").all() and len(scores) > 36
    assert "Documents (12" in (out / "report.html").read_text()


def test_chunk_length_warning_flags_unlike_reference_chunks():
    from miakit.data import Sample
    from miakit.evaluate.documents import chunk_length_warning

    evaluated = [Sample(f"e{i}", "word " * 20, 1, "g") for i in range(4)]
    assert chunk_length_warning(evaluated, [Sample("k", "word " * 30, 0)]) is None
    message = chunk_length_warning(evaluated, [Sample("k", "word " * 400, 0)])
    assert message is not None and "median of 400 words" in message and "--chunk-words" in message
