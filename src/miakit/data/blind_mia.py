"""Reader for the folder layout of the blind-baseline paper's datasets (Das, Zhang & Tramer 2024).

The datasets ship inside the GitHub repository ``ethz-spylab/Blind-MIA`` (not on the Hugging Face Hub), under
``data/<name>/``, in three layouts:

* one file per sample: ``member/*.txt`` and ``nonmember/*.txt`` (``gutenberg``: whole books, ``arxiv1m``: whole
  papers);
* one sample per line: ``member.txt`` and ``nonmember.txt`` (``multi_web``, ``laion_mi``: image captions). The
  ``multi_web`` files are a printed Python list, one quoted string and a comma per line: such lines are
  unquoted here (the original scripts keep the quotes, which then become features of the text);
* NumPy string arrays ``member.npy`` and ``nonmember.npy`` (``arxiv1m_1m``, written by the repository's
  ``data_script_1m_1m.py`` from the RedPajama arXiv dump).

The layout is detected from the files present, so any of the names reads any layout.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

from miakit.data.sample import Sample
from miakit.errors import DataError

BLIND_MIA_DATASETS = ("gutenberg", "arxiv1m", "arxiv1m_1m", "multi_web", "laion_mi")
BLIND_MIA_REPO = "https://github.com/ethz-spylab/Blind-MIA"
_QUOTED = re.compile(r"""^\s*\[?\s*(?P<lit>(?P<q>['"]).*(?P=q))\s*,?\s*\]?\s*$""", re.DOTALL)


def dataset_dir(path: Path, name: str) -> Path:
    """The folder of dataset ``name`` under ``path``: the repository root, its ``data/`` folder or the folder."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory.")
    if path.name in BLIND_MIA_DATASETS and path.name != name:
        raise DataError(f"{path}: this is the Blind-MIA dataset {path.name!r}, not {name!r}.")
    for candidate in (path / "data" / name, path / name, path):
        if candidate.is_dir() and any(
            (candidate / f).exists() for f in ("member", "member.txt", "member.npy", "nonmember")
        ):
            return candidate
    raise DataError(
        f"{path}: no Blind-MIA dataset {name!r} here. Expected the repository ({BLIND_MIA_REPO}) root, its data/ "
        f"folder, or data/{name} itself, holding member/ and nonmember/ folders of .txt files, member.txt and "
        "nonmember.txt (one sample per line) or member.npy and nonmember.npy."
    )


def _unquote(line: str) -> str:
    """A line of a printed Python list (``'text',``) back to its string; other lines unchanged."""
    m = _QUOTED.match(line)
    if m is None:
        return line
    try:
        value = ast.literal_eval(m.group("lit"))
    except (ValueError, SyntaxError):
        return line
    return value if isinstance(value, str) else line


def enumerate_lines(raw: list[str]) -> list[tuple[str, str]]:
    """(index, line) pairs; when nearly every line is a quoted Python string (a printed list), unquoted."""
    filled = [line for line in raw if line.strip()]
    unquoted = [_unquote(line) for line in raw]
    changed = sum(1 for a, b in zip(raw, unquoted, strict=True) if a.strip() and a != b)
    keep = unquoted if filled and changed >= 0.9 * len(filled) else raw
    return [(str(n), line) for n, line in enumerate(keep)]


def _numeric_first(p: Path) -> tuple[int, int | str]:
    return (0, int(p.stem)) if p.stem.isdigit() else (1, p.stem)


def _read_side(folder: Path, side: str) -> list[tuple[str, str]]:
    """(key, text) pairs of one side (``member`` / ``nonmember``): files sorted by number, or lines in order."""
    sub, lines, array = folder / side, folder / f"{side}.txt", folder / f"{side}.npy"
    if sub.is_dir():
        files = sorted(sub.glob("*.txt"), key=_numeric_first)
        if not files:
            raise DataError(f"{sub}: holds no .txt files.")
        out = []
        for f in files:
            try:
                out.append((f.stem, f.read_text(encoding="utf-8")))
            except UnicodeDecodeError as e:
                raise DataError(f"{f}: is not UTF-8 text ({e}).") from None
        return out
    if lines.is_file():
        try:
            raw = lines.read_text(encoding="utf-8").split("\n")
            if raw and raw[-1] == "":  # the file's final newline ends the last line; it is not a blank entry
                raw.pop()
        except UnicodeDecodeError as e:
            raise DataError(f"{lines}: is not UTF-8 text ({e}).") from None
        return list(enumerate_lines(raw))
    if array.is_file():
        try:
            values = np.load(array, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(f"{array}: cannot be read as a NumPy array of strings ({e}).") from None
        if values.dtype.kind not in "US":
            raise DataError(f"{array}: holds {values.dtype} values, not strings.")
        return [(str(n), str(v)) for n, v in enumerate(values.reshape(-1).tolist())]
    raise DataError(f"{folder}: has no {side}/ folder, {side}.txt or {side}.npy.")


def read_blind_mia(path: Path, name: str) -> tuple[list[Sample], int]:
    """Samples of dataset ``name`` (members first) and how many blank entries were dropped.

    Ids are ``blind-mia-<name>-m-<key>`` / ``-n-<key>``, where key is the file's stem or the line / array
    index; meta holds the benchmark, the dataset and the file it came from.
    """
    folder = dataset_dir(path, name)
    samples: list[Sample] = []
    dropped = 0
    for side, label, tag in (("member", 1, "m"), ("nonmember", 0, "n")):
        for key, text in _read_side(folder, side):
            if not text.strip():
                dropped += 1
                continue
            meta = {"benchmark": "blind-mia", "split": name, "side": side}
            samples.append(Sample(f"blind-mia-{name}-{tag}-{key}", text, label, None, meta))
    if not any(s.label == 1 for s in samples) or not any(s.label == 0 for s in samples):
        raise DataError(f"{folder}: needs at least one member and one non-member sample.")
    return samples, dropped
