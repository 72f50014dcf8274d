"""A damaged signal store through the CLI: truncated, random bytes, a damaged page, garbage values. The audit
succeeds, one warning says what happened, a damaged file is moved aside, and the numbers equal a clean run."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_cli
from lm_helpers import synthetic_texts


def audit(model: Path, data: Path, out: Path) -> int:
    return run_cli(
        "audit", "--model", model, "--data", data, "--attacks", "loss,min_k", "--out", out,
        "--bootstrap", "10", "--no-progress",
    )  # fmt: skip


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, tiny_model_dir):
    """One clean audit: its run folder, data and the store it filled (checkpointed into one file)."""
    root = tmp_path_factory.mktemp("clean")
    texts = synthetic_texts(12, seed=11, max_words=20)
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    cache = root / "cache"
    old = os.environ.get("MIAKIT_CACHE")
    os.environ["MIAKIT_CACHE"] = str(cache)
    try:
        assert audit(tiny_model_dir, data, root / "run") == 0
    finally:
        if old is None:
            os.environ.pop("MIAKIT_CACHE")
        else:
            os.environ["MIAKIT_CACHE"] = old
    conn = sqlite3.connect(cache / "store.sqlite")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] > 0
    conn.close()
    return {"run": root / "run", "data": data, "cache": cache}


def _truncate(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _damaged_page(path: Path) -> None:
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as f:  # the b-tree pages after the schema page: table and key index
        for n in (1, 2, 3):
            f.seek(n * page)
            f.write(np.random.default_rng(n).bytes(page))


def _garbage_values(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE entries SET value = randomblob(64) WHERE rowid % 2 = 0")
    conn.execute("UPDATE entries SET value = 'not a blob' WHERE rowid % 2 = 1 AND rowid % 3 = 0")
    conn.close()


@pytest.mark.parametrize(
    ("damage", "moved", "warning"),
    [
        (_truncate, True, "is damaged"),
        (_random_bytes, True, "is damaged"),
        (_damaged_page, True, "is damaged"),
        (_garbage_values, False, "holds values that cannot be read"),
    ],
    ids=["truncated", "random-bytes", "damaged-page", "garbage-values"],
)
def test_a_damaged_store_is_set_aside_and_rebuilt(damage, moved, warning, clean_run, tiny_model_dir, tmp_path, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(clean_run["cache"], cache)
    store = cache / "store.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    damage(store)
    os.environ["MIAKIT_CACHE"] = str(cache)
    try:
        capsys.readouterr()
        code = audit(tiny_model_dir, clean_run["data"], tmp_path / "run")
    finally:
        os.environ.pop("MIAKIT_CACHE")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    flat = " ".join(err.split())
    assert f"warning: the signal store {store} {warning}" in flat
    assert flat.count("warning: the signal store") == 1
    aside = sorted(cache.glob("store.sqlite.corrupt-*"))
    if moved:
        assert [p for p in aside if p.name.count("-") == 2], "the damaged file is kept aside"
        assert f"moved to {aside[0]}" in flat
    else:
        assert aside == []
    clean = pd.read_csv(clean_run["run"] / "scores.csv")
    again = pd.read_csv(tmp_path / "run" / "scores.csv")
    for column in ("loss", "min_k"):
        np.testing.assert_allclose(again[column], clean[column], rtol=1e-6)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["counts"]["forward_passes_computed"] > 0
    conn = sqlite3.connect(store)  # the store in place is whole again and holds readable values
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM entries WHERE typeof(value) != 'blob'").fetchone()[0] == 0
    conn.close()
    os.environ["MIAKIT_CACHE"] = str(cache)
    try:
        assert audit(tiny_model_dir, clean_run["data"], tmp_path / "third") == 0
    finally:
        os.environ.pop("MIAKIT_CACHE")
    assert "warning" not in capsys.readouterr().err  # repaired: the next run reads it without complaint
    third = json.loads((tmp_path / "third" / "manifest.json").read_text())
    assert third["counts"]["forward_passes_computed"] == 0
