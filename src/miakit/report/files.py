"""Run-directory files: results.json, scores.csv, scores.parquet and manifest.json (atomic writes)."""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from miakit.data.spreadsheet import quote_cell, unquote_cell
from miakit.errors import MiakitError
from miakit.evaluate import BLIND_WARNING_PREFIX, AttackEvaluation

RESULTS = "results.json"
SCORES_CSV = "scores.csv"
SCORES_PARQUET = "scores.parquet"
MANIFEST = "manifest.json"
ROC_PNG = "roc.png"
REPORT_HTML = "report.html"
KINDS = ("attack", "baseline")
ID_COLUMNS = ("id", "label")


def order_warnings(warnings: Sequence[str]) -> list[str]:
    """Warnings with the blind-baseline warning first (stable otherwise)."""
    return sorted((str(w) for w in warnings), key=lambda w: not w.startswith(BLIND_WARNING_PREFIX))


def build_results(
    evaluations: Mapping[str, AttackEvaluation],
    warnings: Sequence[str] = (),
    skipped: Mapping[str, str] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The results.json document: attacks' metrics, warnings, per-attack counts and kinds, skipped attacks.

    kinds defaults to "baseline" for the blind baseline and "attack" for everything else.
    """
    kinds = dict(kinds or {})
    details: dict[str, dict[str, Any]] = {}
    for name, ev in evaluations.items():
        kind = kinds.get(name, "baseline" if name.startswith("blind_") else "attack")
        if kind not in KINDS:
            raise MiakitError(f"kind of {name!r} must be one of {', '.join(KINDS)}; got {kind!r}")
        details[str(name)] = {**ev.counts(), "kind": kind}
        if ev.unranked:
            details[str(name)]["unranked"] = ev.unranked
    return {
        "attacks": {str(name): ev.to_json() for name, ev in evaluations.items()},
        "warnings": order_warnings(warnings),
        "details": details,
        "skipped": {str(k): str(v) for k, v in (skipped or {}).items()},
    }


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays unwrapped, paths as strings, NaN and +-inf as None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset, np.ndarray)):
        return [to_jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same directory, then os.replace: never a torn file.

    The temporary name is unique per call (not mkstemp, whose 0600 mode would outlive the rename).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Pretty, NaN-free JSON, atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _atomic_write(Path(path), lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Binary file, atomically (roc.png)."""
    _atomic_write(Path(path), lambda p: p.write_bytes(data))


def write_text(path: Path, text: str) -> None:
    """UTF-8 text file, atomically (report.html)."""
    _atomic_write(Path(path), lambda p: p.write_text(text, encoding="utf-8"))


def check_scores(scores: pd.DataFrame) -> None:
    """The scores table must start with id and label and have unique column names."""
    cols = [str(c) for c in scores.columns]
    if cols[:2] != list(ID_COLUMNS):
        raise MiakitError(f"the scores table must start with columns 'id', 'label'; got {cols[:2]}")
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise MiakitError(f"the scores table has duplicate columns: {', '.join(dupes)}")


def attack_columns(scores: pd.DataFrame) -> list[str]:
    """The per-attack score columns: everything but id and label."""
    return [str(c) for c in scores.columns if c not in ID_COLUMNS]


def write_run_files(run_dir: str | os.PathLike, results: dict, scores: pd.DataFrame, manifest: dict) -> Path:
    """Write results.json, scores.csv, scores.parquet and manifest.json into run_dir (created if needed)."""
    check_scores(scores)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    table = scores.copy()
    table.columns = [str(c) for c in table.columns]
    table["id"] = table["id"].astype(str)
    for col in attack_columns(table):
        table[col] = table[col].astype(float)
    write_json(run_dir / RESULTS, results)
    # ids a spreadsheet would run as formulas are quoted (OWASP); CRLF rows, so an id holding a bare carriage
    # return is written in quotes instead of breaking its row
    as_csv = table.assign(id=table["id"].map(quote_cell))
    _atomic_write(run_dir / SCORES_CSV, lambda p: as_csv.to_csv(p, index=False, lineterminator="\r\n"))
    _atomic_write(run_dir / SCORES_PARQUET, lambda p: table.to_parquet(p, index=False))
    write_json(run_dir / MANIFEST, manifest)
    return run_dir


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MiakitError(f"{path} is not readable JSON ({e}); the run directory may be damaged") from e


def read_scores_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read scores.csv back exactly: ids stay strings ("NA" too) without their formula quote, floats round-trip
    bit for bit."""
    # pandas < 3 needs the Python float parser for bit-exact round trips; pandas 3 deprecates the option
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    scores = pd.read_csv(path, dtype={"id": str}, keep_default_na=False, na_values=[""], **exact)
    scores["id"] = scores["id"].map(unquote_cell)
    return scores


def read_run(run_dir: str | os.PathLike) -> tuple[dict, pd.DataFrame, dict]:
    """Load (results, scores, manifest) from a run directory; MiakitError if it is not one. The scores table
    carries the run's NaN policy (manifest ``evaluation.nan_policy``) as ``scores.attrs["nan_policy"]``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MiakitError(f"{run_dir} is not a directory; expected a miakit run directory")
    missing = [n for n in (RESULTS, MANIFEST) if not (run_dir / n).is_file()]
    if not (run_dir / SCORES_PARQUET).is_file() and not (run_dir / SCORES_CSV).is_file():
        missing.append(f"{SCORES_PARQUET} (or {SCORES_CSV})")
    if missing:
        raise MiakitError(
            f"{run_dir} is not a miakit run directory: missing {', '.join(missing)}. "
            "Point to the folder that 'miakit audit', 'miakit blind' or 'miakit infer-dataset' wrote."
        )
    results = _read_json(run_dir / RESULTS)
    if not isinstance(results, dict) or not {"attacks", "warnings", "details", "skipped"} <= results.keys():
        raise MiakitError(f"{run_dir / RESULTS} lacks the keys attacks, warnings, details and skipped")
    manifest = _read_json(run_dir / MANIFEST)
    if not isinstance(manifest, dict):
        raise MiakitError(f"{run_dir / MANIFEST} must hold a JSON object")
    try:
        if (run_dir / SCORES_PARQUET).is_file():
            scores = pd.read_parquet(run_dir / SCORES_PARQUET)
        else:
            scores = read_scores_csv(run_dir / SCORES_CSV)
    except Exception as e:  # pyarrow/pandas raise many types for a damaged file
        raise MiakitError(f"the scores table in {run_dir} is unreadable ({e})") from e
    check_scores(scores)
    evaluation = manifest.get("evaluation")
    if isinstance(evaluation, Mapping) and evaluation.get("nan_policy"):
        scores.attrs["nan_policy"] = str(evaluation["nan_policy"])  # so the ROC drawn from it matches the table
    return results, scores, manifest
