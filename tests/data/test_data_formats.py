"""Every format round-trips text, label, id, group, split and extra columns."""

from __future__ import annotations

import json

import pytest
from data_helpers import write, write_hf, write_jsonl

from miakit.data import MembershipDataset, Sample, load_dataset
from miakit.errors import DataError

RECORDS = [
    {"id": "a", "text": "first text, with a comma", "label": 1, "group": "g1", "split": "train", "src": "x"},
    {
        "id": "b",
        "text": 'a "quoted"\nmulti-line text',
        "label": 0,
        "group": "g1",
        "split": "test",
        "src": "y",
    },
    {"id": "c", "text": "ünïcödé ✓", "label": 1, "group": "g2", "split": "train", "src": "z"},
    {"id": "d", "text": "last", "label": 0, "group": "g2", "split": "test", "src": "w"},
]


def test_round_trip(tmp_path, fmt):
    ds = load_dataset(write(tmp_path, fmt, RECORDS))
    assert isinstance(ds, MembershipDataset)
    assert ds.ids == ["a", "b", "c", "d"]
    assert ds.texts == [r["text"] for r in RECORDS]
    assert ds.labels == [1, 0, 1, 0]
    assert [s.group for s in ds] == ["g1", "g1", "g2", "g2"]
    assert [s.meta for s in ds] == [{"split": r["split"], "src": r["src"]} for r in RECORDS]
    assert ds.is_labelled
    assert ds.warnings == []


def test_round_trip_without_optional_columns_generates_stable_ids(tmp_path, fmt):
    records = [{"text": f"text {i}", "label": i % 2} for i in range(4)]
    path = write(tmp_path, fmt, records)
    ds = load_dataset(path)
    assert ds.texts == [r["text"] for r in records]
    assert [s.group for s in ds] == [None] * 4
    assert [s.meta for s in ds] == [{}] * 4
    assert len(set(ds.ids)) == 4
    assert all(i.startswith("data:") for i in ds.ids)
    assert load_dataset(path).ids == ds.ids  # stable


def test_generated_ids_name_lines_and_rows(tmp_path):
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n', encoding="utf-8")
    assert load_dataset(jsonl).ids == ["x:1", "x:3"]
    csv_path = tmp_path / "y.csv"
    csv_path.write_text('text,label\n"two\nlines",1\nb,0\n', encoding="utf-8")
    assert load_dataset(csv_path).ids == ["y:2", "y:4"]  # a record's line is the line it starts on


def test_generated_ids_avoid_explicit_ones(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"text": "a", "label": 1}, {"text": "b", "label": 0, "id": "d:1"}],
    )
    ids = load_dataset(path).ids
    assert ids[1] == "d:1"
    assert ids[0] != "d:1" and ids[0].startswith("d:1")


def test_integer_ids_and_groups_become_strings(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": 7, "text": "a", "label": 1, "group": 3}])
    (s,) = load_dataset(path).samples
    assert s == Sample("7", "a", 1, "3")


def test_nested_meta_survives_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 1, "info": {"k": [1, 2]}}])
    assert load_dataset(path)[0].meta == {"info": {"k": [1, 2]}}


def test_hf_dataset_dict_reads_all_splits_and_records_them(tmp_path):
    path = write_hf(
        tmp_path / "hfdict",
        {
            "train": [{"text": "m1", "label": 1}, {"text": "m2", "label": 1}],
            "test": [{"text": "n1", "label": 0}, {"text": "n2", "label": 0}],
        },
    )
    ds = load_dataset(path)
    assert ds.texts == ["m1", "m2", "n1", "n2"]
    assert ds.labels == [1, 1, 0, 0]
    assert [s.meta["split"] for s in ds] == ["train", "train", "test", "test"]
    assert ds.ids == ["hfdict:train:1", "hfdict:train:2", "hfdict:test:1", "hfdict:test:2"]


def test_hf_dataset_dict_with_one_split(tmp_path):
    path = write_hf(tmp_path / "one", {"train": [{"text": "m", "label": 1}, {"text": "n", "label": 0}]})
    ds = load_dataset(path)
    assert ds.labels == [1, 0]
    assert [s.meta for s in ds] == [{"split": "train"}] * 2


def test_json_extension_reads_lines_and_arrays(tmp_path):
    lines = tmp_path / "lines.json"
    lines.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n', encoding="utf-8")
    assert load_dataset(lines).texts == ["a", "b"]
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{"text": "a", "label": 1}, {"text": "b", "label": 0}], indent=2))
    assert load_dataset(array).texts == ["a", "b"]


def test_extensions_are_case_insensitive_and_pq_is_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"text": "a", "label": 1}]), tmp_path / "d.pq")
    assert load_dataset(tmp_path / "d.pq").texts == ["a"]
    (tmp_path / "D.JSONL").write_text('{"text": "a", "label": 1}\n', encoding="utf-8")
    assert load_dataset(str(tmp_path / "D.JSONL")).texts == ["a"]


def test_utf8_bom_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\nhello,1\n".encode())
    assert load_dataset(path)[0] == Sample("bom:2", "hello", 1)


def test_text_is_kept_exactly(tmp_path, fmt):
    text = "  leading and trailing spaces\t "
    ds = load_dataset(write(tmp_path, fmt, [{"text": text, "label": 1}]))
    assert ds.texts == [text]


def test_unlabelled_data_is_allowed(tmp_path, fmt):
    ds = load_dataset(write(tmp_path, fmt, [{"text": "a"}, {"text": "b"}]))
    assert ds.labels == [None, None]
    assert not ds.is_labelled
    assert ds.warnings == []


def test_csv_long_field(tmp_path):
    text = "word " * 100_000  # beyond the csv module's default 128 KiB field limit
    path = tmp_path / "long.csv"
    path.write_text(f"text,label\n{text},1\n", encoding="utf-8")
    assert load_dataset(path).texts == [text]


@pytest.mark.parametrize("source_type", [str, lambda p: p])
def test_source_records_the_path(tmp_path, source_type):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a", "label": 1}])
    assert load_dataset(source_type(path)).source == str(path)


def save_class_labelled(path, labels, names):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    texts = [f"t{i}" for i in range(len(labels))]
    datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("names", [["member", "non-member"], ["nonmember", "member"], ["0", "1"]])
def test_hf_class_label_is_read_by_name(tmp_path, names):
    path = save_class_labelled(tmp_path / "cl", [0, 1], names)
    expected = [{"member": 1, "1": 1}.get(n, 0) for n in names]
    assert load_dataset(path).labels == expected


def test_hf_class_label_with_unknown_names(tmp_path):
    path = save_class_labelled(tmp_path / "cl", [1], ["neg", "pos"])
    with pytest.raises(DataError, match=r"cl, row 1: has an unknown label 'pos'"):
        load_dataset(path)


def test_hf_class_label_minus_one_is_no_label(tmp_path):
    path = save_class_labelled(tmp_path / "cl", [-1, -1], ["nonmember", "member"])
    assert load_dataset(path).labels == [None, None]
