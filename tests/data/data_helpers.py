"""Writers that put the same records in every supported format, into pytest's tmp_path."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

FORMATS = ["jsonl", "csv", "parquet", "hf"]


def _complete(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every record every column (None where absent): Arrow infers columns from the first record."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    return [{k: r.get(k) for k in columns} for r in records]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(k for r in records for k in r))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(records)
    return path


def write_parquet(path: Path, records: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(_complete(records)), path)
    return path


def write_hf(path: Path, records: list[dict[str, Any]] | dict[str, list[dict[str, Any]]]) -> Path:
    import datasets

    if isinstance(records, dict):
        datasets.DatasetDict({k: datasets.Dataset.from_list(_complete(v)) for k, v in records.items()}).save_to_disk(
            str(path)
        )
    else:
        datasets.Dataset.from_list(_complete(records)).save_to_disk(str(path))
    return path


def write(tmp_path: Path, fmt: str, records: Any, name: str = "data") -> Path:
    """Write records as fmt under tmp_path; returns the file (or directory) path."""
    if fmt == "jsonl":
        return write_jsonl(tmp_path / f"{name}.jsonl", records)
    if fmt == "csv":
        return write_csv(tmp_path / f"{name}.csv", records)
    if fmt == "parquet":
        return write_parquet(tmp_path / f"{name}.parquet", records)
    if fmt == "hf":
        return write_hf(tmp_path / name, records)
    raise ValueError(fmt)
