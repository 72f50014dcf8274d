"""infer-dataset reads the suspect and validation texts from the column the user names (--text-column)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from miakit.cli import main
from miakit.run.dataset import read_texts


def _texts(prefix: str, n: int) -> list[str]:
    return [f"{prefix} passage number {i} about the river and the mill." for i in range(n)]


def test_suspect_and_validation_are_read_from_the_named_column(tmp_path):
    suspect = tmp_path / "suspect.jsonl"
    suspect.write_text("".join(json.dumps({"content": t, "text": "decoy"}) + "\n" for t in _texts("s", 8)))
    validation = tmp_path / "validation.csv"
    pd.DataFrame({"content": _texts("v", 16), "other": range(16)}).to_csv(validation, index=False)
    got_suspect, got_validation = read_texts(str(suspect), str(validation), "content")
    assert got_suspect == _texts("s", 8) and got_validation == _texts("v", 16)


def test_a_missing_column_is_one_sentence_naming_the_columns_there(tmp_path, capsys):
    suspect = tmp_path / "suspect.csv"
    pd.DataFrame({"body": _texts("s", 8)}).to_csv(suspect, index=False)
    validation = tmp_path / "validation.csv"
    pd.DataFrame({"body": _texts("v", 16)}).to_csv(validation, index=False)
    args = ["infer-dataset", "-m", str(tmp_path / "no-model"), "--suspect", str(suspect), "--validation"]
    with pytest.raises(SystemExit) as info:
        main([*args, str(validation), "--text-column", "content", "-o", str(tmp_path / "run")])
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 2 and "Traceback" not in err
    assert "no column 'content' (columns: body)" in err
    assert not (tmp_path / "run").exists()
