"""Hostile or odd values in data files: invisible texts, an all-NaN label column, float-like label strings, a NUL
byte, and ids that a spreadsheet would run as formulas (quoted in scores.csv, read back exactly)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from data_helpers import write_csv, write_jsonl, write_parquet

from cli_helpers import run_cli
from lm_helpers import synthetic_texts
from miakit.data import load_dataset
from miakit.data.spreadsheet import quote_cell, unquote_cell
from miakit.errors import DataError
from miakit.report import read_run


def labelled(n: int = 8, seed: int = 3) -> list[dict]:
    return [{"text": t, "label": i % 2} for i, t in enumerate(synthetic_texts(n, seed=seed))]


@pytest.mark.parametrize("invisible", ["\u200b\u200b", "\u200b \u200c\u200d\ufeff", "\u2060\u00a0", "\u3164", "\u00ad"])
def test_a_text_of_invisible_characters_is_rejected_naming_the_row(tmp_path, capsys, invisible):
    records = labelled()
    records[4]["text"] = invisible
    path = write_csv(tmp_path / "data.csv", records)
    out = tmp_path / "run"
    assert run_cli("blind", path, "--out", out, "--bootstrap", "0") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "line 6" in err and "empty text" in err and "zero-width" in err and "Traceback" not in err
    assert not out.exists()
    # visible text next to invisible characters is kept as written
    records[4]["text"] = "\u200bword\u200b"
    assert load_dataset(write_csv(tmp_path / "ok.csv", records)).texts[4] == "\u200bword\u200b"


def test_a_txt_line_of_zero_width_spaces_is_rejected_by_line(tmp_path):
    path = tmp_path / "members.txt"
    path.write_text("a first text\n\n\u200b\u200b\u200b\nthird\n", encoding="utf-8")
    nonmembers = write_jsonl(tmp_path / "n.jsonl", [{"text": "x y"}, {"text": "z w"}])
    with pytest.raises(DataError, match=r"members\.txt, line 3: has an empty text"):
        load_dataset(members=path, nonmembers=nonmembers)


@pytest.mark.parametrize("writer", [write_csv, write_jsonl, write_parquet])
def test_an_all_nan_label_column_is_an_error_not_unlabelled_data(tmp_path, capsys, writer):
    records = [{"text": r["text"], "label": None} for r in labelled()]
    path = writer(tmp_path / f"data.{writer.__name__.removeprefix('write_')}", records)
    with pytest.raises(DataError, match="label column 'label' is empty"):
        load_dataset(path)
    out = tmp_path / "run"
    assert run_cli("audit", "--model", tmp_path / "no-model", "--data", path, "--out", out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is empty (blank or NaN) in every record" in err and "Traceback" not in err
    # without the column the same texts are unlabelled data, as before
    assert (
        load_dataset(writer(tmp_path / f"bare{path.suffix}", [{"text": r["text"]} for r in records])).labels
        == [None] * 8
    )


def test_an_all_nan_float_column_from_pandas_is_an_error(tmp_path):
    frame = pd.DataFrame({"text": synthetic_texts(4), "label": [float("nan")] * 4})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        with pytest.raises(DataError, match="empty"):
            load_dataset(tmp_path / name)


@pytest.mark.parametrize("writer", [write_csv, write_jsonl, write_parquet])
def test_float_like_label_strings_are_accepted_like_the_numbers(tmp_path, writer):
    texts = synthetic_texts(4)
    strings = [{"text": t, "label": v} for t, v in zip(texts, ["1.0", "0.0", " 1.0 ", "0"], strict=True)]
    numbers = [{"text": t, "label": v} for t, v in zip(texts, [1.0, 0.0, 1.0, 0], strict=True)]
    as_text = writer(tmp_path / f"s.{writer.__name__[6:]}", strings)
    as_number = write_jsonl(tmp_path / "n.jsonl", numbers)
    assert load_dataset(as_text).labels == load_dataset(as_number).labels == [1, 0, 1, 0]


@pytest.mark.parametrize("bad", ["0.5", "yes", "2.0"])
def test_other_label_strings_are_a_clear_error(tmp_path, capsys, bad):
    records = labelled()
    records[2]["label"] = bad
    path = write_csv(tmp_path / "d.csv", records)
    assert run_cli("blind", path, "--out", tmp_path / "run") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"line 4: has an unknown label '{bad}'" in err and "--label-map" in err and "Traceback" not in err


def test_a_nul_byte_is_named_once_without_at_at(tmp_path, capsys):
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in labelled()]
    lines[1] = '{"text": "a\x00b", "label": 0}'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run_cli("blind", path, "--out", tmp_path / "run") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "line 2: is not valid JSON (a NUL byte at column 12" in err
    assert "at at" not in err and "Traceback" not in err
    # other control characters: the json message without the dangling 'at'
    lines[1] = '{"text": "a\x01b", "label": 0}'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="Invalid control character at column 12") as info:
        load_dataset(path)
    assert "at at" not in str(info.value)


FORMULAS = ["=1+1", "+1", "-2", "@SUM(A1)", "\tA", "\rB", "'quoted", "plain", "a=b"]


def test_quote_cell_follows_owasp_and_round_trips():
    assert [quote_cell(v) for v in FORMULAS] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tA",
        "'\rB",
        "''quoted",
        "plain",
        "a=b",
    ]
    assert [unquote_cell(quote_cell(v)) for v in FORMULAS] == FORMULAS


def test_formula_ids_are_quoted_in_scores_csv_and_read_back_exactly(tmp_path, capsys):
    """Needs the report/files.py change (quote ids on write, unquote on read) given in the helper's report."""
    records = labelled(len(FORMULAS) + 1)
    for record, id_ in zip(records, FORMULAS, strict=False):
        record["id"] = id_
    records[-1]["id"] = "last"
    path = write_jsonl(tmp_path / "d.jsonl", records)
    out = tmp_path / "run"
    assert run_cli("blind", path, "--out", out, "--bootstrap", "0") == 0
    with (out / "scores.csv").open(newline="", encoding="utf-8") as f:
        written = [row["id"] for row in csv.DictReader(f)]
    assert written == [quote_cell(r["id"]) for r in records]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in written)
    assert run_cli("report", out) == 0
    expected = [r["id"] for r in records]
    assert read_run(out)[1]["id"].tolist() == expected
    Path(out / "scores.parquet").unlink()  # the CSV alone must map the ids back too
    assert read_run(out)[1]["id"].tolist() == expected
