"""What a scenario directory holds, and the seeded member / non-member split it is built from.

A scenario directory is a target whose training data is known exactly::

    model/             the trained model (Hugging Face format, tokenizer included; or a PEFT adapter)
    dataset.jsonl      members (label 1) and held-out non-members (label 0) with ids
    members.jsonl      the members alone
    nonmembers.jsonl   the non-members alone
    canaries.jsonl     inserted secrets and their candidates (only when canaries were inserted)
    calibration.jsonl  a calibration set (only when asked for): further trained members and held-out
                       non-members, disjoint from dataset.jsonl, for the attacks that fit (ReCaLL, a probe)
    scenario.json      how it was built; ``name`` says what it is, ``reference`` names the base model of a
                       fine-tune

``miakit audit --scenario DIR`` reads all of it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from miakit.errors import DataError, MiakitError

__all__ = [
    "CALIBRATION_FILE",
    "SCENARIO_FILE",
    "draw_split",
    "load_scenario",
    "provenance",
    "scenario_split",
    "scenario_texts",
    "split_off_calibration",
    "write_scenario",
]

SCENARIO_FILE = "scenario.json"
CALIBRATION_FILE = "calibration.jsonl"


def scenario_texts(corpus: str | Path | None) -> list[str]:
    """Texts of the user's corpus file (``.txt``, ``.jsonl[.gz]``, ``.csv``, ``.parquet``) or the bundled one."""
    if corpus is None:
        from miakit.scenarios.corpus import load_bundled_passages

        return [p["text"] for p in load_bundled_passages()]
    from miakit.data.corpus import read_corpus_texts

    return read_corpus_texts(corpus)


def draw_split(
    texts: Sequence[str],
    n_members: int,
    n_nonmembers: int,
    *,
    seed: int = 0,
    min_words: int | None = None,
    max_words: int | None = None,
    n_extra: int = 0,
) -> tuple[list[str], ...]:
    """Seeded disjoint draws of members and non-members from one pool (same distribution by construction), and,
    with ``n_extra``, a third disjoint draw (e.g. the training texts of a reference model).

    Exact duplicate texts are collapsed first, so a non-member never equals a member; ``min_words`` and
    ``max_words`` bound passage length (shorter passages make cheaper scenarios).
    """
    if n_members < 1 or n_nonmembers < 1:
        raise MiakitError("A scenario needs at least one member and one non-member.")
    pool = list(dict.fromkeys(t for t in texts if t.strip()))
    if min_words is not None or max_words is not None:
        lo, hi = min_words or 0, max_words or 10**9
        pool = [t for t in pool if lo <= len(t.split()) <= hi]
    needed = n_members + n_nonmembers + n_extra
    if needed > len(pool):
        extra = f" + {n_extra} reference-model passages" if n_extra else ""
        raise DataError(
            f"The scenario needs {needed} distinct passages ({n_members} members + {n_nonmembers} non-members"
            f"{extra}); the corpus has {len(pool)} within the length bounds. Ask for fewer or give a larger corpus."
        )
    drawn = random.Random(seed).sample(pool, needed)
    split = (drawn[:n_members], drawn[n_members : n_members + n_nonmembers])
    return (*split, drawn[n_members + n_nonmembers :]) if n_extra else split


def scenario_split(
    corpus: str | Path | None,
    n_members: int,
    n_nonmembers: int | None,
    *,
    seed: int,
    min_words: int | None,
    max_words: int | None,
    n_extra: int = 0,
) -> tuple[list[str], ...]:
    """``draw_split`` over the corpus (None: the bundled one), as many non-members as members by default."""
    return draw_split(
        scenario_texts(corpus),
        n_members,
        n_nonmembers if n_nonmembers is not None else n_members,
        seed=seed,
        min_words=min_words,
        max_words=max_words,
        n_extra=n_extra,
    )


def split_off_calibration(extra: Sequence[str], n_calibration: int) -> tuple[list[str], list[str], list[str]]:
    """The last ``2 * n_calibration`` texts of a scenario's extra draw as (calibration members, calibration
    non-members), and what is left before them (e.g. a reference model's training texts)."""
    if n_calibration < 0:
        raise MiakitError(f"The calibration split needs a count of at least 0; got {n_calibration}.")
    cut = len(extra) - 2 * n_calibration
    rest, calibration = list(extra[:cut]), list(extra[cut:])
    return calibration[:n_calibration], calibration[n_calibration:], rest


def provenance(
    corpus: str | Path | None, seed: int, min_words: int | None, max_words: int | None, started: float
) -> dict[str, Any]:
    """The ``scenario.json`` keys every scenario records: corpus, seed, length bounds, builder, build time."""
    import time

    from miakit import __version__

    return {
        "corpus": str(corpus) if corpus is not None else "bundled",
        "seed": seed,
        "min_words": min_words,
        "max_words": max_words,
        "built_by": f"miakit {__version__}",
        "build_seconds": round(time.perf_counter() - started, 3),
    }


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_scenario(
    out: Path,
    members: Sequence[str],
    nonmembers: Sequence[str],
    info: dict[str, Any],
    *,
    calibration: tuple[Sequence[str], Sequence[str]] | None = None,
) -> Path:
    """Write the data files and ``scenario.json`` (paths in it are relative to ``out``); returns its path.

    ``calibration``: (trained members, held-out non-members) kept out of ``dataset.jsonl``, written as
    ``calibration.jsonl`` (ids ``calibration-member-i`` / ``calibration-nonmember-i``) and recorded as
    ``calibration`` with its counts."""
    out.mkdir(parents=True, exist_ok=True)
    member_rows = [{"id": f"member-{i}", "text": t, "label": 1} for i, t in enumerate(members)]
    nonmember_rows = [{"id": f"nonmember-{i}", "text": t, "label": 0} for i, t in enumerate(nonmembers)]
    _write_jsonl(out / "members.jsonl", member_rows)
    _write_jsonl(out / "nonmembers.jsonl", nonmember_rows)
    _write_jsonl(out / "dataset.jsonl", member_rows + nonmember_rows)
    record = {
        "model": "model",
        "dataset": "dataset.jsonl",
        "members": "members.jsonl",
        "nonmembers": "nonmembers.jsonl",
        "n_members": len(members),
        "n_nonmembers": len(nonmembers),
        **info,
    }
    if calibration is not None and (calibration[0] or calibration[1]):
        cal_members, cal_nonmembers = calibration
        rows = [{"id": f"calibration-member-{i}", "text": t, "label": 1} for i, t in enumerate(cal_members)]
        rows += [{"id": f"calibration-nonmember-{i}", "text": t, "label": 0} for i, t in enumerate(cal_nonmembers)]
        _write_jsonl(out / CALIBRATION_FILE, rows)
        record.update(
            calibration=CALIBRATION_FILE,
            n_calibration_members=len(cal_members),
            n_calibration_nonmembers=len(cal_nonmembers),
        )
    path = out / SCENARIO_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)  # scenario.json appears last: its presence marks a finished scenario
    return path


def load_scenario(directory: str | Path) -> dict[str, Any]:
    """``scenario.json`` of a scenario directory with ``model``, ``dataset``, ``canaries``, ``calibration`` as
    absolute paths and ``reference`` as a path (when it is a directory) or hub id, or None."""
    root = Path(directory).expanduser()
    path = root / SCENARIO_FILE
    if not path.is_file():
        raise MiakitError(
            f"{root} is not a scenario directory (no {SCENARIO_FILE}); build one with "
            "'miakit scenario pretrain' or 'miakit scenario finetune'."
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise MiakitError(f"Unreadable {path}: {exc}") from exc
    for key in ("model", "dataset", "members", "nonmembers", "canaries", "calibration"):
        if info.get(key):
            info[key] = str((root / info[key]).resolve())
    ref = info.get("reference")
    if ref and not Path(ref).is_absolute() and (root / ref).exists():
        info["reference"] = str((root / ref).resolve())
    info["directory"] = str(root.resolve())
    return info
