"""A members file plus a non-members file: the role is the label."""

from __future__ import annotations

import pytest
from data_helpers import write, write_jsonl

from miakit.data import load_dataset
from miakit.errors import DataError


def test_members_and_nonmembers_in_every_format(tmp_path, fmt):
    m = write(tmp_path, fmt, [{"text": "m1"}, {"text": "m2", "group": "g"}], name="members")
    n = write(tmp_path, fmt, [{"text": "n1"}, {"text": "n2", "group": "g"}], name="nonmembers")
    ds = load_dataset(members=m, nonmembers=n)
    assert ds.texts == ["m1", "m2", "n1", "n2"]
    assert ds.labels == [1, 1, 0, 0]
    assert [s.group for s in ds] == [None, "g", None, "g"]
    assert len(set(ds.ids)) == 4
    assert str(m) in ds.source and str(n) in ds.source


def test_mixed_formats(tmp_path):
    m = write(tmp_path, "csv", [{"text": "m1"}, {"text": "m2"}], name="members")
    n = write(tmp_path, "parquet", [{"text": "n1"}, {"text": "n2"}], name="nonmembers")
    assert load_dataset(members=m, nonmembers=n).labels == [1, 1, 0, 0]


def test_agreeing_label_column_is_accepted(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "m", "label": "member"}, {"text": "m2", "label": 1}])
    n = write_jsonl(tmp_path / "n.jsonl", [{"text": "n", "label": "non-member"}, {"text": "n2", "label": 0}])
    assert load_dataset(members=m, nonmembers=n).labels == [1, 1, 0, 0]


def test_disagreeing_label_is_an_error(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "m", "label": 1}, {"text": "m2", "label": "nonmember"}])
    n = write_jsonl(tmp_path / "n.jsonl", [{"text": "n"}])
    with pytest.raises(DataError, match=r"m\.jsonl, line 2: .*'nonmember'.*members file"):
        load_dataset(members=m, nonmembers=n)


def test_disagreeing_label_in_nonmembers_file(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "m"}])
    n = write_jsonl(
        tmp_path / "n.jsonl",
        [{"text": "n", "label": 0}, {"text": "n2", "label": 0}, {"text": "n3", "label": True}],
    )
    with pytest.raises(DataError, match=r"n\.jsonl, line 3: .*True.*non-members file"):
        load_dataset(members=m, nonmembers=n)


def test_same_stems_still_get_unique_ids(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "n").mkdir()
    m = write_jsonl(tmp_path / "m" / "train.jsonl", [{"text": "a"}, {"text": "b"}])
    n = write_jsonl(tmp_path / "n" / "train.jsonl", [{"text": "c"}, {"text": "d"}])
    ids = load_dataset(members=m, nonmembers=n).ids
    assert len(set(ids)) == 4
    assert ids == load_dataset(members=m, nonmembers=n).ids


def test_duplicate_ids_across_files_name_both(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "a", "id": "x"}, {"text": "b", "id": "shared"}])
    n = write_jsonl(tmp_path / "n.jsonl", [{"text": "c", "id": "shared"}])
    with pytest.raises(DataError) as e:
        load_dataset(members=m, nonmembers=n)
    msg = str(e.value)
    assert "m.jsonl, line 2" in msg and "n.jsonl, line 1" in msg and "'shared'" in msg


def test_same_file_twice_is_an_error(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "a"}])
    with pytest.raises(DataError, match=r"m\.jsonl.*both the members and the non-members"):
        load_dataset(members=m, nonmembers=m)


def test_members_mode_warns_about_cross_label_texts(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "same"}, {"text": "m2"}])
    n = write_jsonl(tmp_path / "n.jsonl", [{"text": "same"}, {"text": "n2"}])
    warnings = load_dataset(members=m, nonmembers=n).warnings
    assert any(w.startswith("1 text appears both as member and as non-member") for w in warnings)
