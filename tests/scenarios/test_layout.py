"""Scenario directories: the seeded split and the files every scenario writes."""

from __future__ import annotations

import json

import pytest

from miakit.data import load_dataset
from miakit.errors import DataError, MiakitError
from miakit.scenarios.layout import draw_split, load_scenario, write_scenario


def test_split_is_disjoint_seeded_and_collapses_duplicates():
    texts = [f"passage number {i} " * 3 for i in range(50)] + ["passage number 0 " * 3] * 5
    members, nonmembers = draw_split(texts, 20, 25, seed=3)
    assert len(members) == 20 and len(nonmembers) == 25
    assert not set(members) & set(nonmembers)
    assert draw_split(texts, 20, 25, seed=3) == (members, nonmembers)
    assert draw_split(texts, 20, 25, seed=4) != (members, nonmembers)


def test_split_respects_word_bounds_and_says_when_the_pool_is_too_small():
    texts = ["one two"] + [" ".join(["w"] * n) + f" {n}" for n in range(3, 40)]
    members, nonmembers = draw_split(texts, 5, 5, seed=0, min_words=10, max_words=20)
    assert all(10 <= len(t.split()) <= 20 for t in members + nonmembers)
    with pytest.raises(DataError, match="needs 30 distinct passages"):
        draw_split(texts, 15, 15, min_words=10, max_words=20)
    with pytest.raises(MiakitError):
        draw_split(texts, 0, 5)


def test_written_scenario_loads_as_audit_data(tmp_path):
    members, nonmembers = ["alpha text", "beta text"], ["gamma text", "delta text", "eps text"]
    write_scenario(tmp_path, members, nonmembers, {"kind": "test", "reference": None})
    info = load_scenario(tmp_path)
    assert info["n_members"] == 2 and info["n_nonmembers"] == 3
    assert info["model"] == str((tmp_path / "model").resolve())
    dataset = load_dataset(info["dataset"])
    assert sorted(s.text for s in dataset.samples if s.label == 1) == sorted(members)
    assert sorted(s.text for s in dataset.samples if s.label == 0) == sorted(nonmembers)
    rows = [json.loads(line) for line in (tmp_path / "members.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == members and {r["label"] for r in rows} == {1}
    with pytest.raises(MiakitError, match="not a scenario directory"):
        load_scenario(tmp_path / "nowhere")


def test_draw_split_gives_a_third_disjoint_draw_for_a_reference_model():
    texts = [f"passage number {i} of the corpus" for i in range(100)]
    members, nonmembers, extra = draw_split(texts, 20, 25, seed=3, n_extra=30)
    assert (len(members), len(nonmembers), len(extra)) == (20, 25, 30)
    assert not set(members) & set(nonmembers) and not (set(members) | set(nonmembers)) & set(extra)
    assert draw_split(texts, 20, 25, seed=3, n_extra=30) == (members, nonmembers, extra)
    with pytest.raises(MiakitError, match="reference-model passages"):
        draw_split(texts, 40, 40, n_extra=30)
