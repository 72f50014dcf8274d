"""Every data error is a DataError naming the file and, where known, the line or row."""

from __future__ import annotations

import re

import pytest
from data_helpers import write, write_jsonl

from miakit.data import load_dataset
from miakit.errors import DataError, MiakitError


def error_of(*args, **kwargs) -> str:
    with pytest.raises(DataError) as e:
        load_dataset(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg.strip(), "a user-facing error is one paragraph"
    return msg


def test_unparseable_json_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0\n', encoding="utf-8")
    msg = error_of(path)
    assert msg.startswith(f"{path}, line 3: is not valid JSON")


def test_json_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": 1}\n["b", 0]\n', encoding="utf-8")
    assert error_of(path).startswith(f"{path}, line 2: holds a JSON list")


def test_json_array_file_with_bad_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": }\n]\n', encoding="utf-8")
    assert error_of(path).startswith(f"{path}, line 3: is not valid JSON")


MISSING_TEXT_AT = {"jsonl": "line 3", "csv": "line 5", "parquet": "row 3", "hf": "row 3"}


def test_missing_text(tmp_path, fmt):
    records = [{"text": "a", "label": 1}, {"text": "two\nlines", "label": 0}, {"text": None, "label": 1}]
    if fmt == "jsonl":
        del records[2]["text"]
    path = write(tmp_path, fmt, records)
    msg = error_of(path)
    assert msg.startswith(f"{path}, {MISSING_TEXT_AT[fmt]}: has ")
    assert "text" in msg


def test_whitespace_only_text(tmp_path, fmt):
    path = write(tmp_path, fmt, [{"text": "a", "label": 1}, {"text": " \t ", "label": 0}])
    at = {"jsonl": "line 2", "csv": "line 3", "parquet": "row 2", "hf": "row 2"}[fmt]
    assert error_of(path).startswith(f"{path}, {at}: has an empty text")


def test_non_string_text(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": 5, "label": 1}])
    assert error_of(path).startswith(f"{path}, line 1: has a text of type int")


def test_missing_text_column(tmp_path):
    for fmt in ("csv", "parquet", "hf"):
        path = write(tmp_path, fmt, [{"content": "a", "label": 1}], name=f"nocol_{fmt}")
        msg = error_of(path)
        assert str(path) in msg and "no 'text' column" in msg and "content" in msg


def test_hf_dataset_dict_errors_name_the_split(tmp_path):
    path = write(tmp_path, "hf", {"train": [{"text": "a"}], "test": [{"text": "b"}, {"text": ""}]})
    assert error_of(path).startswith(f"{path}, split 'test', row 2: has an empty text")


def test_unknown_label_is_quoted(tmp_path, fmt):
    path = write(tmp_path, fmt, [{"text": "a", "label": "member"}, {"text": "b", "label": "yes"}])
    at = {"jsonl": "line 2", "csv": "line 3", "parquet": "row 2", "hf": "row 2"}[fmt]
    msg = error_of(path)
    assert msg.startswith(f"{path}, {at}: has an unknown label 'yes'")
    assert "member/non-member" in msg


def test_unknown_integer_label(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 2}])
    assert error_of(path).startswith(f"{path}, line 1: has an unknown label 2.")


def test_duplicate_ids_name_both_lines(tmp_path, fmt):
    records = [
        {"id": "x", "text": "a", "label": 1},
        {"id": "y", "text": "b", "label": 0},
        {"id": "x", "text": "c", "label": 0},
    ]
    path = write(tmp_path, fmt, records)
    first, second = {
        "jsonl": ("line 1", "line 3"),
        "csv": ("line 2", "line 4"),
        "parquet": ("row 1", "row 3"),
        "hf": ("row 1", "row 3"),
    }[fmt]
    assert error_of(path).startswith(f"{path}, {first} and {second}: both use the id 'x'")


def test_non_utf8_jsonl(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"text": "ok", "label": 1}\n{"text": "caf\xe9", "label": 0}\n')
    msg = error_of(path)
    assert msg.startswith(f"{path}, line 2: is not valid UTF-8 (byte 0xe9")


def test_non_utf8_csv(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b'text,label\nok,1\n"multi\nline caf\xe9",0\n')
    assert error_of(path).startswith(f"{path}, line 4: is not valid UTF-8")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    msg = error_of(path)
    assert msg.startswith(f"{path}: no such file or directory")


def test_missing_members_file(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "a"}])
    msg = error_of(members=m, nonmembers=tmp_path / "gone.csv")
    assert "gone.csv: no such file" in msg


@pytest.mark.parametrize("name", ["data.xlsx", "data.docx", "data"])
def test_unknown_format(tmp_path, name):
    path = tmp_path / name
    path.write_text("text\n", encoding="utf-8")
    msg = error_of(path)
    assert msg.startswith(f"{path}: unknown data format")
    assert ".jsonl" in msg and ".csv" in msg and ".parquet" in msg


def test_directory_that_is_not_a_saved_dataset(tmp_path):
    (tmp_path / "plain").mkdir()
    msg = error_of(tmp_path / "plain")
    assert msg.startswith(f"{tmp_path / 'plain'}: is a directory but not a dataset saved")


def test_label_present_for_some_records_only(tmp_path, fmt):
    records = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c"}]
    path = write(tmp_path, fmt, records)
    at, first = {
        "jsonl": ("line 3", "line 1"),
        "csv": ("line 4", "line 2"),
        "parquet": ("row 3", "row 1"),
        "hf": ("row 3", "row 1"),
    }[fmt]
    msg = error_of(path)
    assert msg.startswith(f"{path}, {at}: has no label, but other records do ({first} is the first")


def test_label_present_for_some_records_only_in_members_file(tmp_path):
    m = write_jsonl(tmp_path / "m.jsonl", [{"text": "a"}, {"text": "b", "label": 1}])
    n = write_jsonl(tmp_path / "n.jsonl", [{"text": "c"}])
    assert error_of(members=m, nonmembers=n).startswith(f"{m}, line 1: has no label")


def test_both_data_and_members(tmp_path):
    d = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 1}])
    msg = error_of(d, members=d)
    assert msg.startswith(f"Got both a data file ({d})")


@pytest.mark.parametrize("role", ["members", "nonmembers"])
def test_only_one_of_members_and_nonmembers(tmp_path, role):
    f = write_jsonl(tmp_path / "f.jsonl", [{"text": "a"}])
    msg = error_of(**{role: f})
    assert str(f) in msg and "but no" in msg


def test_no_data_at_all():
    assert error_of().startswith("No data given.")


def test_empty_files(tmp_path):
    jsonl = tmp_path / "empty.jsonl"
    jsonl.write_text("\n\n", encoding="utf-8")
    assert error_of(jsonl) == f"{jsonl}: contains no records."
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n", encoding="utf-8")
    assert error_of(header_only) == f"{header_only}: contains no records."
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("", encoding="utf-8")
    assert error_of(nothing).startswith(f"{nothing}: is empty")


def test_csv_row_with_wrong_field_count(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,1\nb, c,0\n", encoding="utf-8")
    assert error_of(path).startswith(f"{path}, line 3: has 3 fields but the header has 2")


def test_csv_duplicate_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label,text\na,1,b\n", encoding="utf-8")
    assert error_of(path).startswith(f"{path}, line 1: the header repeats the column name(s) text")


def test_bad_id_type(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "id": [1]}])
    assert error_of(path).startswith(f"{path}, line 1: has id [1] of type list")


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"not parquet at all")
    assert error_of(path).startswith(f"{path}: cannot be read as Parquet")


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_max_samples(tmp_path, bad):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a"}])
    with pytest.raises(MiakitError, match=re.escape(f"max_samples must be a positive integer, got {bad!r}")):
        load_dataset(path, max_samples=bad)
