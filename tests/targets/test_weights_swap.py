"""Weights replaced by others of the same size with the mtime set back (``touch -r``, a copy tool that keeps
times) are noticed: the rerun recomputes with the new weights, and ``--no-cache`` records their fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from cli_helpers import run_cli
from lm_helpers import make_model, synthetic_texts


def audit(model: Path, data: Path, out: Path, *extra: str) -> dict:
    code = run_cli(
        "audit", "--model", model, "--data", data, "--attacks", "loss", "--out", out,
        "--bootstrap", "10", "--no-progress", *extra,
    )  # fmt: skip
    assert code == 0
    return json.loads((out / "manifest.json").read_text())


def weights_fingerprint(folder: Path) -> str:
    """The directory fingerprint computed here from the files' bytes (no memo)."""
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.suffix == ".safetensors" or p.name in ("config.json", "generation_config.json"):
            h.update(p.name.encode())
            h.update(hashlib.sha256(p.read_bytes()).hexdigest().encode())
    return "sha256:" + h.hexdigest()


def test_same_size_same_mtime_swap_recomputes(tiny_model_dir, tiny_tokenizer, tmp_path, cache_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    texts = synthetic_texts(8, seed=3, max_words=12)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    first = audit(folder, data, tmp_path / "first")
    assert first["counts"]["forward_passes_computed"] > 0

    other = tmp_path / "other"
    make_model(len(tiny_tokenizer), seed=1).save_pretrained(other)  # same architecture, other random weights
    weights = folder / "model.safetensors"
    before = weights.stat()
    assert (other / "model.safetensors").stat().st_size == before.st_size
    shutil.copyfile(other / "model.safetensors", weights)  # same inode, new content: only the ctime tells
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # what `touch -r` does
    after = weights.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    again = audit(folder, data, tmp_path / "again")
    assert again["counts"]["forward_passes_computed"] > 0
    assert again["counts"]["forward_passes_cached"] == 0
    assert again["model"]["fingerprint"] != first["model"]["fingerprint"]
    assert again["model"]["fingerprint"].split("|")[0] == weights_fingerprint(folder)
    first_scores, again_scores = (pd.read_csv(tmp_path / d / "scores.csv")["loss"] for d in ("first", "again"))
    assert not np.allclose(first_scores, again_scores)

    no_cache = audit(folder, data, tmp_path / "no-cache", "--no-cache")
    assert no_cache["model"]["fingerprint"] == again["model"]["fingerprint"]
    np.testing.assert_allclose(pd.read_csv(tmp_path / "no-cache" / "scores.csv")["loss"], again_scores, rtol=1e-6)


def test_a_swapped_tokenizer_file_with_restored_mtime_changes_the_identity(tiny_model_dir, tmp_path, cache_dir):
    """The deferred identity memo (target-identities.json) is keyed by what a user cannot restore either."""
    from miakit.targets.deferred import identity_key

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    settings = {"revision": None, "dtype": "float32", "device": "cpu", "trust_remote_code": False, "max_length": None}
    key = identity_key(str(folder), settings)
    config = folder / "tokenizer_config.json"
    before = config.stat()
    text = config.read_text()
    swapped = text.replace('"model_max_length"', '"model_max_lengtx"')
    assert swapped != text and len(swapped) == len(text)
    config.write_text(swapped)
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert identity_key(str(folder), settings) != key
