"""The calibration protocol: a calibration set is never scored."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miakit.data import MembershipDataset, Sample
from miakit.data.calibration import split_calibration
from miakit.errors import DataError


def _data(n: int, prefix: str = "t") -> MembershipDataset:
    return MembershipDataset([Sample(f"{prefix}{i}", f"text number {i}", i % 2) for i in range(n)], source="data")


def test_fraction_is_stratified_seeded_and_disjoint():
    data = _data(40)
    split = split_calibration(data, fraction=0.25, seed=3)
    assert len(split.calibration) == 10 and len(split.evaluation) == 30
    assert split.info["n_members"] == 5 and split.info["n_nonmembers"] == 5
    assert not {s.text for s in split.calibration} & {s.text for s in split.evaluation}
    again = split_calibration(data, fraction=0.25, seed=3)
    assert again.calibration.ids == split.calibration.ids


def test_fraction_holds_out_whole_documents():
    """Samples sharing a group are one document: all its chunks go to calibration or all stay evaluated."""
    samples = [Sample(f"d{d}#{c}", f"doc {d} chunk {c}", d % 2, f"d{d}") for d in range(20) for c in range(d % 3 + 1)]
    split = split_calibration(MembershipDataset(samples, source="docs"), fraction=0.2, seed=1)
    held = {s.group for s in split.calibration}
    kept = {s.group for s in split.evaluation}
    assert len(held) == 4 and not held & kept and len(held | kept) == 20
    assert split.info["unit"] == "documents" and "of the documents of docs" in split.info["source"]
    assert sum(1 for s in samples if s.group in held) == len(split.calibration)
    assert {s.label for s in split.calibration} == {0, 1}
    mixed = MembershipDataset([Sample("a", "x", 1, "g"), Sample("b", "y", 0, "g"), *samples], source="m")
    with pytest.raises(DataError, match="mixes member and non-member"):
        split_calibration(mixed, fraction=0.2)


def test_calibration_file_removes_other_chunks_of_its_documents():
    data = MembershipDataset(
        [Sample(f"d{d}#{c}", f"doc {d} chunk {c}", d % 2, f"d{d}") for d in range(6) for c in range(3)], source="data"
    )
    known = MembershipDataset([Sample("k", "doc 2 chunk 0", 0, "d2"), Sample("x", "other", 1, "elsewhere")], source="c")
    split = split_calibration(data, calibration=known)
    assert "d2" not in {s.group for s in split.evaluation} and len(split.evaluation) == 15
    assert split.info["removed_from_scoring"] == 3 and split.info["removed_same_document"] == 2


def test_fraction_treats_an_ungrouped_sample_as_the_document_of_its_id():
    """An ungrouped sample "d1" and chunks of group "d1" are one document, as document statistics key them."""
    samples = [Sample("d1", "lone text", 1)] + [
        Sample(f"d{d}#{c}", f"t{d} {c}", d % 2, f"d{d}") for d in range(1, 9) for c in range(2)
    ]
    split = split_calibration(MembershipDataset(samples, source="s"), fraction=0.25, seed=0)
    sides = {s.group or s.id for s in split.calibration}, {s.group or s.id for s in split.evaluation}
    assert not sides[0] & sides[1]


def test_calibration_file_overlap_is_removed_and_counted():
    data = _data(20)
    known = MembershipDataset([Sample("k1", "text number 3", 1), Sample("k2", "unrelated", 0)], source="cal")
    split = split_calibration(data, calibration=known)
    assert split.info["removed_from_scoring"] == 1 and len(split.evaluation) == 19
    assert "text number 3" not in split.evaluation.texts


def test_bad_calibration_requests_are_errors():
    data = _data(10)
    with pytest.raises(DataError, match="between 0 and 1"):
        split_calibration(data, fraction=1.5)
    with pytest.raises(DataError, match="not both"):
        split_calibration(data, calibration=data, fraction=0.2)
    with pytest.raises(DataError, match="nothing is left"):
        split_calibration(data, calibration=data)
    unlabelled = MembershipDataset([Sample("u", "x", None)], source="u")
    with pytest.raises(DataError, match="must be labelled"):
        split_calibration(data, calibration=unlabelled)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(4, 30),
    overlap=st.lists(st.integers(0, 29), max_size=10),
    extra=st.integers(0, 5),
)
def test_no_calibration_text_is_ever_evaluated(n, overlap, extra):
    data = _data(n)
    known = [Sample(f"k{i}", f"text number {i}", 1) for i in overlap if i < n - 1]
    known += [Sample(f"x{i}", f"another {i}", 0) for i in range(extra)]
    if not known:
        known = [Sample("x", "another", 0)]
    split = split_calibration(data, calibration=MembershipDataset(known, source="cal"))
    assert not {s.text for s in known} & set(split.evaluation.texts)
    assert split.info["removed_from_scoring"] == n - len(split.evaluation)
