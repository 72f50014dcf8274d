"""Benchmark loaders, on tiny local copies laid out like the published datasets; nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from miakit.data.benchmarks import BENCHMARKS, load_benchmark, parse_spec
from miakit.errors import DataError, MiakitError


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _wikimia_rows(n: int, tag: str) -> list[dict]:
    return [{"input": f"{tag} event text {i}", "label": i % 2} for i in range(n)]


@pytest.fixture
def wikimia_disk(tmp_path: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict(
        {
            "WikiMIA_length32": datasets.Dataset.from_list(_wikimia_rows(6, "short")),
            "WikiMIA_length64": datasets.Dataset.from_list(_wikimia_rows(4, "long")),
        }
    )
    out = tmp_path / "wikimia"
    dd.save_to_disk(str(out))
    return out


def test_wikimia_save_to_disk_two_splits(wikimia_disk: Path) -> None:
    ds = load_benchmark("wikimia:32", path=wikimia_disk)
    assert len(ds) == 6
    assert ds.labels == [0, 1, 0, 1, 0, 1]
    assert ds.ids[0] == "wikimia-WikiMIA_length32-0"
    assert ds.texts[0] == "short event text 0"
    assert ds[0].meta["benchmark"] == "wikimia" and ds[0].meta["split"] == "WikiMIA_length32"
    assert ds.source == "wikimia:32"
    assert ds.warnings[0] == BENCHMARKS["wikimia"].known_bias
    other = load_benchmark("wikimia:64", path=wikimia_disk)
    assert len(other) == 4 and other.texts[0] == "long event text 0"


def test_wikimia_missing_split_in_saved_dict(wikimia_disk: Path) -> None:
    with pytest.raises(DataError, match=r"no split 'WikiMIA_length128'.*WikiMIA_length32"):
        load_benchmark("wikimia:128", path=wikimia_disk)


def test_wikimia_jsonl_per_split_directory(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "WikiMIA_length128.jsonl", _wikimia_rows(8, "x"))
    _write_jsonl(tmp_path / "WikiMIA_length256.jsonl", _wikimia_rows(2, "y"))
    ds = load_benchmark("wikimia:128", path=tmp_path)
    assert len(ds) == 8 and ds.ids[-1] == "wikimia-WikiMIA_length128-7"
    with pytest.raises(DataError, match=r"no split 'WikiMIA_length32'.*WikiMIA_length128\.jsonl"):
        load_benchmark("wikimia:32", path=tmp_path)


def test_wikimia_max_samples_stratified_and_seeded(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "WikiMIA_length32.jsonl", _wikimia_rows(20, "t"))
    a = load_benchmark("wikimia:32", path=tmp_path, max_samples=6, seed=1)
    b = load_benchmark("wikimia:32", path=tmp_path, max_samples=6, seed=1)
    assert len(a) == 6 and a.ids == b.ids
    assert a.labels.count(1) == 3 and a.labels.count(0) == 3
    assert a.ids == sorted(a.ids, key=lambda i: int(i.rsplit("-", 1)[1]))  # original order kept
    with pytest.raises(MiakitError, match="max_samples"):
        load_benchmark("wikimia:32", path=tmp_path, max_samples=0)


def test_mimir_member_nonmember_rows(tmp_path: Path) -> None:
    rows = [
        {"member": f"pile doc {i}", "nonmember": f"test doc {i}", "member_neighbors": [], "nonmember_neighbors": []}
        for i in range(3)
    ]
    f = _write_jsonl(tmp_path / "ngram_13_0.8.jsonl", rows)
    ds = load_benchmark("mimir:wikipedia_(en)", path=tmp_path)  # default split
    assert len(ds) == 6
    assert ds.ids[:2] == ["mimir-ngram_13_0.8-0-m", "mimir-ngram_13_0.8-0-n"]
    assert ds.labels == [1, 0, 1, 0, 1, 0]
    assert ds.texts[:2] == ["pile doc 0", "test doc 0"]
    assert ds[0].meta == {"benchmark": "mimir", "split": "ngram_13_0.8", "config": "wikipedia_(en)"}
    assert BENCHMARKS["mimir"].known_bias not in ds.warnings  # the near-IID split carries no shift warning
    # a single file is read as the split itself; the strict 7-gram filter is flagged
    shifted = load_benchmark("mimir:pile_cc:ngram_7_0.2", path=f)
    assert len(shifted) == 6 and shifted.warnings[0] == BENCHMARKS["mimir"].known_bias


def test_mimir_parquet_file(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.Table.from_pylist([{"member": "a", "nonmember": "b"}, {"member": "c", "nonmember": "d"}])
    pq.write_table(table, tmp_path / "m.parquet")
    ds = load_benchmark("mimir:arxiv:ngram_13_0.2", path=tmp_path / "m.parquet")
    assert ds.texts == ["a", "b", "c", "d"] and ds.ids[-1] == "mimir-ngram_13_0.2-1-n"


def test_bookmia_groups_from_book_ids(tmp_path: Path) -> None:
    rows = [
        {"book_id": 7, "book": "Old Classic.txt", "snippet_id": 0, "snippet": "call me ishmael", "label": 1},
        {"book_id": 7, "book": "Old Classic.txt", "snippet_id": 1, "snippet": "some years ago", "label": 1},
        {"book_id": 9, "book": "New Novel.txt", "snippet_id": 0, "snippet": "it was 2023", "label": 0},
        {"book_id": 9, "book": "New Novel.txt", "snippet_id": 1, "snippet": "and then", "label": 0},
    ]
    f = _write_jsonl(tmp_path / "book_data.jsonl", rows)
    ds = load_benchmark("bookmia", path=f)
    assert len(ds) == 4 and ds.labels == [1, 1, 0, 0]
    assert [s.group for s in ds] == ["7", "7", "9", "9"]
    assert ds.ids[2] == "bookmia-train-2"
    assert ds[2].meta["book"] == "New Novel.txt" and ds[2].meta["split"] == "train"
    assert ds.warnings[0] == BENCHMARKS["bookmia"].known_bias
    # without book_id the title is the group
    _write_jsonl(tmp_path / "train.jsonl", [{k: v for k, v in r.items() if k != "book_id"} for r in rows])
    titled = load_benchmark("bookmia", path=tmp_path)
    assert [s.group for s in titled] == ["Old Classic.txt"] * 2 + ["New Novel.txt"] * 2


def test_vlmia_text_local_file_and_saved_dataset(tmp_path: Path) -> None:
    rows = [{"input": f"caption {i}", "label": int(i < 2)} for i in range(4)]
    f = _write_jsonl(tmp_path / "text_llava15_coco_gpt_answer_32.jsonl", rows)
    ds = load_benchmark("vlmia-text:llava_v15_gpt_text", path=f)
    assert len(ds) == 4 and ds.labels == [1, 1, 0, 0]
    assert ds.ids[0] == "vlmia-text-length_32-0" and ds[0].meta["config"] == "llava_v15_gpt_text"
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    again = load_benchmark("vlmia-text:minigpt4_stage2_text:64", path=tmp_path / "single")
    assert again.texts == ds.texts and again[0].meta["split"] == "length_64"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("imagenet:1", "unknown benchmark 'imagenet'"),
        ("wikimia:48", "no length '48'"),
        ("wikimia", "exactly one length"),
        ("mimir:books3", "no domain 'books3'"),
        ("mimir:github:ngram_9_0.5", "no split 'ngram_9_0.5'"),
        ("mimir:temporal_arxiv", "needs a split"),
        ("vlmia-text:llava", "no config 'llava'"),
        ("vlmia-text:minigpt4_stage2_text:4", "no split 'length_4'"),
        ("bookmia:extra", "single part"),
        ("", "is empty"),
    ],
)
def test_bad_specs_list_valid_specs(spec: str, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        load_benchmark(spec, path="/nonexistent")
    assert "Valid specs: wikimia:32" in str(info.value)


def test_spec_defaults() -> None:
    assert parse_spec("WikiMIA:256").split == "WikiMIA_length256"
    assert parse_spec("mimir:c4").split == "none"
    assert parse_spec("vlmia-text:minigpt4_stage2_text").split == "length_32"


def test_row_errors(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "WikiMIA_length32.jsonl", [{"text": "wrong field", "label": 1}])
    with pytest.raises(DataError, match="no 'input' field"):
        load_benchmark("wikimia:32", path=tmp_path)
    _write_jsonl(tmp_path / "WikiMIA_length32.jsonl", [{"input": "x", "label": 5}])
    with pytest.raises(DataError, match="unknown label 5"):
        load_benchmark("wikimia:32", path=tmp_path)
    with pytest.raises(DataError, match="no such file"):
        load_benchmark("wikimia:32", path=tmp_path / "missing")


def test_hub_failure_asks_for_benchmark_path(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="--benchmark-path"):
        load_benchmark("mimir:github")
    assert calls == [(("iamgroot42/mimir", "github"), {"split": "ngram_13_0.8"})]


def test_hub_success_uses_split(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(
        datasets, "load_dataset", lambda hub_id, config, split: datasets.Dataset.from_list(_wikimia_rows(2, split))
    )
    ds = load_benchmark("wikimia:64")
    assert ds.texts == ["WikiMIA_length64 event text 0", "WikiMIA_length64 event text 1"]
