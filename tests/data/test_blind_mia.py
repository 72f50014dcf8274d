"""Blind-MIA folder layouts (ethz-spylab/Blind-MIA data/<name>), on tiny fixtures written like the real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from miakit.cli import app
from miakit.data.benchmarks import BLIND_MIA_INFO, load_benchmark
from miakit.data.blind_mia import enumerate_lines
from miakit.errors import DataError


def _files_layout(root: Path, name: str, members: list[str], nonmembers: list[str]) -> Path:
    """data/<name>/member/<i>.txt and nonmember/<i>.txt, as gutenberg/ and arxiv1m/ are laid out."""
    for side, texts in (("member", members), ("nonmember", nonmembers)):
        folder = root / "data" / name / side
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            (folder / f"{i}.txt").write_text(text, encoding="utf-8")
    return root


def test_one_file_per_sample_numeric_order_and_ids(tmp_path: Path) -> None:
    members = [f"Book {i}.\n\nChapter one of a long story, number {i}." for i in range(12)]
    nonmembers = [f"Later book {i}.\n\nA newer tale." for i in range(3)]
    root = _files_layout(tmp_path, "gutenberg", members, nonmembers)
    for path in (root, root / "data", root / "data" / "gutenberg"):  # clone, data/ or the folder itself
        ds = load_benchmark("blind-mia:gutenberg", path=path)
        assert len(ds) == 15 and ds.labels == [1] * 12 + [0] * 3
        # 0, 1, 2, ..., 10, 11: numeric order, not the 0, 1, 10, 11, 2 of a string sort
        assert ds.ids[:12] == [f"blind-mia-gutenberg-m-{i}" for i in range(12)]
        assert ds.texts[11] == members[11]  # whole file, newlines kept
        assert ds.ids[12] == "blind-mia-gutenberg-n-0"
        assert ds[0].meta == {"benchmark": "blind-mia", "split": "gutenberg", "side": "member"}
        assert ds.source == "blind-mia:gutenberg"
        assert ds.warnings[0] == BLIND_MIA_INFO["gutenberg"].known_bias


def test_lines_layout_with_printed_python_list(tmp_path: Path) -> None:
    folder = tmp_path / "multi_web"
    folder.mkdir()
    # multi_web's files are a printed list: a quoted string and a comma per line, the last without a comma
    (folder / "member.txt").write_text(" 'red bike leaning wall',\n 'dog park sunny day',\n 'old map'", "utf-8")
    (folder / "nonmember.txt").write_text(
        " 'A Sign In Berlin',\n \"Harrods, the world's store\",\n 'Man On The Moon'\n", "utf-8"
    )
    ds = load_benchmark("blind-mia:multi_web", path=tmp_path)
    assert ds.texts == [
        "red bike leaning wall",
        "dog park sunny day",
        "old map",
        "A Sign In Berlin",
        "Harrods, the world's store",
        "Man On The Moon",
    ]
    assert ds.labels == [1, 1, 1, 0, 0, 0]
    assert not any("blank entries" in w for w in ds.warnings)  # a final newline ends a line, it is no entry


def test_final_newline_is_not_a_blank_entry_and_folder_names_must_match(tmp_path: Path) -> None:
    folder = tmp_path / "laion_mi"
    folder.mkdir()
    (folder / "member.txt").write_text("Red bike\nBlue car\n", "utf-8")
    (folder / "nonmember.txt").write_text("Green tree\n\nGrey cat\n", "utf-8")  # one real blank line
    ds = load_benchmark("blind-mia:laion_mi", path=folder)
    assert ds.texts == ["Red bike", "Blue car", "Green tree", "Grey cat"]
    assert any(w.startswith("1 blank entries") for w in ds.warnings)
    with pytest.raises(DataError, match=r"this is the Blind-MIA dataset 'laion_mi', not 'multi_web'"):
        load_benchmark("blind-mia:multi_web", path=folder)


def test_plain_caption_lines_are_not_unquoted() -> None:
    # laion_mi: plain lines; one caption that happens to be quoted must stay as written
    raw = ["Valencia hosts a conference", "'Quoted title'", "Hokkaido Country Club"]
    assert [t for _, t in enumerate_lines(raw)] == raw
    printed = [" 'a b',", " 'c d',", " 'e'"]
    assert [t for _, t in enumerate_lines(printed)] == ["a b", "c d", "e"]


def test_npy_layout(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "arxiv1m_1m"
    folder.mkdir(parents=True)
    np.save(folder / "member.npy", np.asarray(["\\section{Intro} February paper", "second member"]))
    np.save(folder / "nonmember.npy", np.asarray(["\\section{Intro} March paper"]))
    ds = load_benchmark("blind-mia:arxiv1m_1m", path=tmp_path)
    assert ds.texts == ["\\section{Intro} February paper", "second member", "\\section{Intro} March paper"]
    assert ds.ids == ["blind-mia-arxiv1m_1m-m-0", "blind-mia-arxiv1m_1m-m-1", "blind-mia-arxiv1m_1m-n-0"]


def test_npy_of_objects_is_refused_without_unpickling(tmp_path: Path) -> None:
    np.save(tmp_path / "member.npy", np.asarray([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nonmember.npy", np.asarray(["x"]))
    with pytest.raises(DataError, match=r"member\.npy"):
        load_benchmark("blind-mia:arxiv1m_1m", path=tmp_path)


def test_errors_name_the_repository_and_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not on the Hugging Face Hub.*ethz-spylab/Blind-MIA.*--benchmark-path"):
        load_benchmark("blind-mia:gutenberg")
    with pytest.raises(DataError, match=r"no Blind-MIA dataset 'laion_mi'.*member\.txt"):
        load_benchmark("blind-mia:laion_mi", path=tmp_path)
    with pytest.raises(DataError, match=r"Blind-MIA needs one dataset.*gutenberg.*laion_mi"):
        load_benchmark("blind-mia:wikimia", path=tmp_path)
    only_members = tmp_path / "laion_mi"
    only_members.mkdir()
    (only_members / "member.txt").write_text("a caption\n", "utf-8")
    with pytest.raises(DataError, match="nonmember"):
        load_benchmark("blind-mia:laion_mi", path=tmp_path)


def test_max_samples_is_stratified(tmp_path: Path) -> None:
    root = _files_layout(tmp_path, "arxiv1m", [f"member paper {i}" for i in range(20)], [f"new {i}" for i in range(20)])
    ds = load_benchmark("blind-mia:arxiv1m", path=root, max_samples=10, seed=3)
    assert len(ds) == 10 and sum(ds.labels) == 5


def test_cli_blind_on_blind_mia_layout(tmp_path: Path) -> None:
    """`miakit blind --benchmark blind-mia:multi_web --benchmark-path CLONE`: a caption-format shift is found."""
    rng = np.random.default_rng(0)
    words = "dog cat street house tree car beach city river park sign shop".split()
    folder = tmp_path / "data" / "multi_web"
    folder.mkdir(parents=True)
    members = [" " + repr(" ".join(rng.choice(words, 5))) + "," for _ in range(60)]
    nonmembers = [" " + repr(" ".join(w.title() for w in rng.choice(words, 12))) + "," for _ in range(60)]
    (folder / "member.txt").write_text("\n".join(members), "utf-8")
    (folder / "nonmember.txt").write_text("\n".join(nonmembers), "utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["blind", "--benchmark", "blind-mia:multi_web", "--benchmark-path", str(tmp_path), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["attacks"]["blind_bow"]["auroc"]["value"] > 0.95
    assert results["warnings"][0].startswith("Blind baseline:")


def test_audit_gutenberg_layout_as_chunked_documents(trained_scenario, tmp_path, cache_dir):
    """`miakit audit --benchmark blind-mia:gutenberg --chunk-words N`: each book file becomes one document."""
    from test_cli import run_cli

    members = [" ".join(trained_scenario["members"][3 * i : 3 * i + 3]) for i in range(5)]
    nonmembers = [" ".join(trained_scenario["nonmembers"][3 * i : 3 * i + 3]) for i in range(5)]
    root = _files_layout(tmp_path / "clone", "gutenberg", members, nonmembers)
    out = tmp_path / "run"
    args = ("--model", trained_scenario["target"], "--benchmark", "blind-mia:gutenberg", "--benchmark-path", root)
    assert run_cli("audit", *args, "--chunk-words", "25", "--attacks", "loss", "--bootstrap", "0", "--out", out) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["documents"]["n_documents"] == 10 and results["documents"]["chunks_per_document"] > 2
    assert BLIND_MIA_INFO["gutenberg"].known_bias in results["warnings"]
