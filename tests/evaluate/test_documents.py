"""Document inference: chunk scores aggregated per group, against independent computations and end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from miakit.errors import MiakitError
from miakit.evaluate.documents import chunk_text, document_scores


def test_statistics_match_their_definitions():
    groups = ["a", "a", "b", "b", "b", "c"]
    labels = [1, 1, 0, 0, 0, 1]
    scores = [0.9, 0.5, 0.1, 0.4, np.nan, 0.7]
    ids, doc_labels, mean = document_scores(groups, labels, scores, "mean")
    assert ids == ["a", "b", "c"] and doc_labels.tolist() == [1, 0, 1]
    assert mean[0] == pytest.approx(0.7) and mean[1] == -np.inf and mean[2] == pytest.approx(0.7)
    _, _, above = document_scores(groups, labels, scores, "above")
    # a: median of the others' finite chunks (0.1, 0.4, 0.7) is 0.4 -> both chunks above
    assert above[0] == 1.0 and above[1] == pytest.approx(0.0)
    _, _, mwu = document_scores(groups, labels, scores, "mwu")
    # c (0.7) against a's and b's chunks (0.9, 0.5, 0.1, 0.4, -inf): beats 4 of 5
    assert mwu[2] == pytest.approx(4 / 5)
    with pytest.raises(MiakitError, match="mixes member and non-member"):
        document_scores(["a", "a"], [1, 0], [0.1, 0.2])


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


@pytest.mark.parametrize("method", ["mean", "mwu"])
def test_document_auroc_rises_with_chunks_per_document(weak_scenario, tmp_path, cache_dir, method):
    """Documents of k passages of a weakly trained tiny model: more chunks per document, more evidence."""
    from miakit.api import audit

    trained_scenario = weak_scenario
    members, nonmembers = trained_scenario["members"], trained_scenario["nonmembers"]
    aurocs = {}
    for k in (1, 8):
        rows = [
            {"id": f"{tag}{i}", "text": t, "label": label, "group": f"{tag}doc{i // k}"}
            for tag, texts, label in (("m", members, 1), ("n", nonmembers, 0))
            for i, t in enumerate(texts)
        ]
        data = tmp_path / f"docs{k}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = audit(str(trained_scenario["target"]), str(data), attacks="loss", bootstrap=0, progress=False,
                       out=str(tmp_path / f"run{k}"))  # fmt: skip
        aurocs[k] = result.results["documents"]["methods"][method]["loss"]["auroc"]["value"]
        assert result.results["documents"]["n_documents"] == 2 * 192 // k
    assert aurocs[8] > aurocs[1] + 0.1, aurocs  # measured: 0.670 per passage; 8 per document 0.931 (mean), 0.944 (mwu)


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
