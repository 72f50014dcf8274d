"""max_samples: a seeded, class-stratified subset that keeps the original order."""

from __future__ import annotations

from collections import Counter

import pytest
from data_helpers import write, write_jsonl

from miakit.data import load_dataset
from miakit.data.subset import stratified_indices


@pytest.fixture
def path(tmp_path):
    # 30 members and 70 non-members, interleaved irregularly.
    records = [{"id": f"r{i:03d}", "text": f"text {i}", "label": int(i % 10 < 3)} for i in range(100)]
    return write_jsonl(tmp_path / "d.jsonl", records)


def test_stratified(path):
    for n, expected in [(10, {1: 3, 0: 7}), (20, {1: 6, 0: 14}), (11, {1: 3, 0: 8}), (1, {0: 1})]:
        assert Counter(load_dataset(path, max_samples=n).labels) == expected


def test_exact_size(path):
    for n in range(1, 100):
        assert len(load_dataset(path, max_samples=n)) == n


def test_seeded(path):
    a = load_dataset(path, max_samples=10, seed=1).ids
    assert load_dataset(path, max_samples=10, seed=1).ids == a
    others = {tuple(load_dataset(path, max_samples=10, seed=s).ids) for s in range(2, 7)}
    assert any(o != tuple(a) for o in others)


def test_order_preserved(path):
    full = load_dataset(path).ids
    sub = load_dataset(path, max_samples=25, seed=3).ids
    positions = [full.index(i) for i in sub]
    assert positions == sorted(positions)


def test_at_least_as_many_as_the_data_keeps_everything(path):
    full = load_dataset(path)
    assert load_dataset(path, max_samples=100).samples == full.samples
    assert load_dataset(path, max_samples=10_000).samples == full.samples


def test_unlabelled_data(tmp_path, fmt):
    p = write(tmp_path, fmt, [{"text": f"t{i}"} for i in range(10)])
    ds = load_dataset(p, max_samples=4, seed=0)
    assert len(ds) == 4 and ds.labels == [None] * 4


def test_members_mode(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": f"m{i}"} for i in range(50)])
    n = write_jsonl(tmp_path / "n.jsonl", [{"text": f"n{i}"} for i in range(50)])
    ds = load_dataset(members=m, nonmembers=n, max_samples=10)
    assert Counter(ds.labels) == {1: 5, 0: 5}


def test_draw_does_not_depend_on_class_order():
    labels = [1] * 5 + [0] * 5
    flipped = [0] * 5 + [1] * 5
    a = stratified_indices(labels, 4, seed=0)
    b = stratified_indices(flipped, 4, seed=0)
    assert [labels[i] for i in a].count(1) == 2
    assert [i % 5 for i in a if labels[i] == 1] == [i % 5 for i in b if flipped[i] == 1]
