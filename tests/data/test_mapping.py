"""Column and label mapping (``text_column``, ``label_column``, ``label_map``) from flags, YAML and keywords;
``.txt`` member/non-member files in ``audit``; an unlabelled file of known non-members for calibration."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from data_helpers import write_csv

from cli_helpers import run_cli
from lm_helpers import synthetic_texts
from miakit.data import load_dataset
from miakit.errors import MiakitError
from miakit.run.spec import RunSpec, load_config_file, make_spec

YES_NO = ["yes", "no", "Yes", "no", "yes", "NO", "yes", "no"]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def mapped_csv(tmp_path) -> Path:
    texts = synthetic_texts(len(YES_NO), seed=8)
    records = [{"content": t, "is_member": v, "text": "not this"} for t, v in zip(texts, YES_NO, strict=True)]
    return write_csv(tmp_path / "mapped.csv", records)


def test_flags_map_columns_and_labels(mapped_csv, tmp_path, capsys):
    out = tmp_path / "run"
    flags = ("--text-column", "content", "--label-column", "is_member", "--label-map", "yes=1,no=0")
    assert run_cli("blind", mapped_csv, *flags, "--out", out, "--bootstrap", "0") == 0
    with (out / "scores.csv").open(newline="") as f:
        labels = [int(row["label"]) for row in csv.DictReader(f)]
    assert labels == [1 if v.lower() == "yes" else 0 for v in YES_NO]
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["label_map"] == {"yes": 1, "no": 0} and config["text_column"] == "content"
    texts = load_dataset(mapped_csv, text_column="content", label_column="is_member", label_map={"yes": 1, "no": 0})
    assert texts.texts == synthetic_texts(len(YES_NO), seed=8)  # the mapped column, not 'text'


def test_without_the_map_the_labels_are_an_error_that_names_the_flag(mapped_csv, tmp_path, capsys):
    code = run_cli("blind", mapped_csv, "--text-column", "content", "--label-column", "is_member")
    err = flat(capsys.readouterr().err)
    assert code == 2 and "line 2: has an unknown label 'yes'" in err and "--label-map" in err
    assert "Traceback" not in err


def test_a_value_outside_the_map_names_the_row_and_the_map(tmp_path, capsys):
    records = [{"text": t, "y": v} for t, v in zip(synthetic_texts(4), ["yes", "no", "maybe", "no"], strict=True)]
    path = write_csv(tmp_path / "d.csv", records)
    code = run_cli("blind", path, "--label-column", "y", "--label-map", "yes=1,no=0", "--out", tmp_path / "r")
    err = flat(capsys.readouterr().err)
    assert code == 2 and "line 4: has an unknown label 'maybe'" in err and "yes=1, no=0" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("flag", "message"),
    [("yes", "VALUE=1 or VALUE=0 pairs"), ("yes=2", "maps to '2'"), (",", "label_map is empty")],
)
def test_a_malformed_label_map_is_a_user_error(mapped_csv, capsys, flag, message):
    assert run_cli("blind", mapped_csv, "--label-map", flag) == 2
    err = flat(capsys.readouterr().err)
    assert message in err and "Traceback" not in err


def test_a_missing_mapped_column_is_named(mapped_csv, capsys):
    assert run_cli("blind", mapped_csv, "--text-column", "body") == 2
    assert "no 'body' column (it has: content, is_member, text)" in flat(capsys.readouterr().err)
    with pytest.raises(MiakitError, match="has no label column 'member'"):
        load_dataset(mapped_csv, text_column="content", label_column="member")


def test_yaml_and_keywords_give_the_same_mapping(mapped_csv, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "model: m\ndata: mapped.csv\ntext_column: content\nlabel_column: is_member\nlabel_map: {'yes': 1, 'no': 0}\n"
    )
    from_yaml = make_spec(RunSpec, load_config_file(config))
    from_keywords = make_spec(
        RunSpec,
        {"model": "m", "data": str(mapped_csv), "text_column": "content", "label_column": "is_member",
         "label_map": "yes=1,no=0"},
    )  # fmt: skip
    assert from_yaml.model_dump() == from_keywords.model_dump()
    config.write_text("model: m\ndata: mapped.csv\nlabel_map: {yes: 1, no: 0}\n")  # YAML reads yes/no as booleans
    with pytest.raises(MiakitError, match="quote the keys"):
        make_spec(RunSpec, load_config_file(config))
    with pytest.raises(MiakitError, match="apply to your files, not a benchmark"):
        make_spec(RunSpec, {"model": "m", "benchmark": "wikimia:32", "label_map": "yes=1,no=0"})


def test_txt_members_and_nonmembers_and_calibration_nonmembers_in_audit(tiny_model_dir, tmp_path, cache_dir):
    texts = synthetic_texts(26, seed=12, max_words=16)
    members, nonmembers, known = texts[:8], texts[8:16], texts[16:]
    (tmp_path / "m.txt").write_text("\n".join(members) + "\n\n")
    (tmp_path / "n.txt").write_text("\n".join(nonmembers) + "\n")
    # known non-members: ten new texts and one that is also evaluated (it must leave the scored set)
    (tmp_path / "known.txt").write_text("\n".join([*known, nonmembers[0]]) + "\n")
    out = tmp_path / "run"
    code = run_cli(
        "audit", "--model", tiny_model_dir, "--members", tmp_path / "m.txt", "--nonmembers", tmp_path / "n.txt",
        "--calibration-nonmembers", tmp_path / "known.txt", "--attacks", "loss,recall[n_shots=2]",
        "--bootstrap", "0", "--out", out, "--no-progress",
    )  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    recall = [name for name in results["attacks"] if name.startswith("recall")]  # named with or without [n_shots]
    assert "loss" in results["attacks"] and len(recall) == 1 and not results["skipped"]
    manifest = json.loads((out / "manifest.json").read_text())
    calibration = manifest["calibration"]
    assert calibration["n_nonmembers"] == len(known) + 1 and calibration["n_members"] == 0
    assert calibration["removed_from_scoring"] == 1 and "known.txt" in calibration["source"]
    with (out / "scores.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15 and [int(r["label"]) for r in rows] == [1] * 8 + [0] * 7
    assert [r["id"] for r in rows][:2] == ["m:1", "m:2"]
