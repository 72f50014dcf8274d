"""Unlabelled reference corpora (e.g. for token-frequency tables): plain text, JSONL(.gz), CSV, Parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from miakit.errors import DataError


def read_corpus_texts(path: str | Path, text_column: str = "text") -> list[str]:
    """Texts of a corpus file: .txt (one text per non-empty line), .jsonl[.gz] / .csv / .parquet (the field or
    column ``text_column``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Reference corpus '{path}' does not exist or is not a file.")
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else open
    base = name.removesuffix(".gz")
    try:
        if base.endswith(".txt"):
            with opener(path, "rt", encoding="utf-8") as f:
                return [line.strip() for line in f if line.strip()]
        if base.endswith((".jsonl", ".json")):
            texts = []
            with opener(path, "rt", encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}, line {lineno}: not valid JSON ({exc.msg}).") from exc
                    text = record.get(text_column) if isinstance(record, dict) else None
                    if not isinstance(text, str):
                        raise DataError(f"{path}, line {lineno}: no string field '{text_column}'.")
                    texts.append(text)
            return texts
        if base.endswith((".csv", ".parquet", ".pq")):
            import pandas as pd

            frame = pd.read_csv(path) if base.endswith(".csv") else pd.read_parquet(path)
            if text_column not in frame.columns:
                raise DataError(f"{path}: no column '{text_column}' (columns: {', '.join(map(str, frame.columns))}).")
            return [str(t) for t in frame[text_column].dropna()]
    except UnicodeDecodeError as exc:
        raise DataError(f"Reference corpus '{path}' is not valid UTF-8 ({exc.reason}).") from exc
    raise DataError(f"Reference corpus '{path}': unknown format; use .txt, .jsonl[.gz], .csv or .parquet.")
