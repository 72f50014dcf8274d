"""Every accepted label spelling, in every format where it can be written."""

from __future__ import annotations

import pytest
from data_helpers import write, write_jsonl

from miakit.data import load_dataset
from miakit.data.labels import normalize_label

MEMBER = [1, "1", True, "true", "True", "TRUE", "member", "Member", "MEMBER", " member "]
NONMEMBER = [
    0,
    "0",
    False,
    "false",
    "False",
    "nonmember",
    "NonMember",
    "non-member",
    "Non-Member",
    "non_member",
    "NON_MEMBER",
]


@pytest.mark.parametrize("value", MEMBER)
def test_member_spellings(value):
    assert normalize_label(value) == 1


@pytest.mark.parametrize("value", NONMEMBER)
def test_nonmember_spellings(value):
    assert normalize_label(value) == 0


@pytest.mark.parametrize("value", [2, -1, "yes", "no", "2", "members", "non member", 0.5, [1], {}])
def test_unknown_spellings(value):
    with pytest.raises(ValueError, match="unknown label"):
        normalize_label(value)


def test_widened_float_labels():
    assert normalize_label(1.0) == 1
    assert normalize_label(0.0) == 0


def test_labels_are_plain_ints():
    assert type(normalize_label(True)) is int


@pytest.mark.parametrize("member,nonmember", list(zip(MEMBER, NONMEMBER, strict=False)))
def test_jsonl_spellings(tmp_path, member, nonmember):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": member}, {"text": "b", "label": nonmember}])
    labels = load_dataset(path).labels
    assert labels == [1, 0]
    assert all(type(x) is int for x in labels)


def test_string_spellings_in_every_format(tmp_path, fmt):
    records = [{"text": f"t{i}", "label": v} for i, v in enumerate(["member", "Non-Member", "1", "false"])]
    assert load_dataset(write(tmp_path, fmt, records)).labels == [1, 0, 1, 0]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_bool_and_int_labels_in_typed_formats(tmp_path, fmt):
    bools = [{"text": "a", "label": True}, {"text": "b", "label": False}]
    ints = [{"text": "a", "label": 1}, {"text": "b", "label": 0}]
    assert load_dataset(write(tmp_path, fmt, bools, name="bools")).labels == [1, 0]
    assert load_dataset(write(tmp_path, fmt, ints, name="ints")).labels == [1, 0]


def test_csv_true_false(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,TRUE\nb,False\nc,non_member\n", encoding="utf-8")
    assert load_dataset(path).labels == [1, 0, 0]
