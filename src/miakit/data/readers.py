"""Read membership data from JSONL, CSV, Parquet or a saved Hugging Face dataset into a MembershipDataset."""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miakit.data.labels import ACCEPTED, label_name, normalize_label
from miakit.data.sample import MembershipDataset, Sample
from miakit.data.subset import stratified_indices
from miakit.data.validate import dataset_warnings
from miakit.errors import DataError, MiakitError

PathLike = str | os.PathLike[str]

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
}
RESERVED = ("text", "label", "id", "group", "split")


@dataclass(frozen=True)
class RawRecord:
    """One record as read from a file: its fields, where it is ('line 7') and a key for generated ids."""

    fields: dict[str, Any]
    where: str
    key: str


def _error(path: Path | str, where: str | None, problem: str) -> DataError:
    """A DataError whose message starts with the file and, where known, the line or row."""
    return DataError(f"{path}{', ' + where if where else ''}: {problem}")


def _blank(value: Any) -> bool:
    """True for a value that means 'not given': None, NaN, or a whitespace-only string."""
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


# Characters that show nothing although Unicode does not class them as whitespace: the Hangul and halfwidth
# fillers and the blank Braille pattern (format characters such as zero-width spaces are found by category).
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def visible(text: str) -> bool:
    """Whether ``text`` has a character that shows: not whitespace, not a control or format character
    (zero-width space, joiners, BOM, direction marks), not a filler."""
    return any(
        not ch.isspace() and ch not in _INVISIBLE and unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp")
        for ch in text
    )


# ---------------------------------------------------------------------------------------------- formats


def detect_format(path: PathLike) -> str:
    """'jsonl', 'csv', 'parquet' or 'hf' (a directory) from the path; DataError if unknown or missing."""
    p = Path(path)
    if not p.exists():
        hint = "" if p.is_absolute() else f" (relative paths are read from {Path.cwd()})"
        raise _error(p, None, f"no such file or directory. Check the path{hint}.")
    if p.is_dir():
        return "hf"
    fmt = EXTENSIONS.get(p.suffix.lower())
    if fmt is None:
        raise _error(
            p,
            None,
            f"unknown data format {p.suffix or '(no extension)'!r}. miakit reads JSON Lines (.jsonl, .json, "
            ".ndjson), CSV (.csv), Parquet (.parquet, .pq), plain text (.txt, one text per line, unlabelled) "
            "and directories written by Hugging Face datasets' save_to_disk.",
        )
    return fmt


def read_records(path: PathLike, text_column: str = "text", label_column: str = "label") -> list[RawRecord]:
    """Read every record of a data file or saved dataset directory, format chosen by detect_format; the text
    is in ``text_column`` (.txt files: each non-blank line is one text)."""
    p = Path(path)
    fmt = detect_format(p)
    if fmt == "txt":
        return _read_txt(p, text_column)
    if fmt == "jsonl":
        return _read_jsonl(p)
    if fmt == "hf":
        return _read_hf(p, text_column, label_column)
    return _read_csv(p, text_column) if fmt == "csv" else _read_parquet(p, text_column)


def _read_txt(path: Path, text_column: str) -> list[RawRecord]:
    """Plain text: one text per line (surrounding whitespace dropped, blank lines skipped), no labels."""
    text = _decode_utf8(path, path.read_bytes())
    return [
        RawRecord({text_column: line.strip()}, f"line {n}", str(n))
        for n, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    ]


def _decode_utf8(path: Path, raw: bytes) -> str:
    """Decode the whole file as UTF-8 (a BOM is dropped), naming the line of the first bad byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise _error(
            path,
            f"line {line}",
            f"is not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte column {column}). Save the file as "
            "UTF-8, for example by re-exporting it or converting it with iconv.",
        ) from None
    return text.removeprefix("\ufeff")


def _read_jsonl(path: Path) -> list[RawRecord]:
    """JSON Lines: one object per line, blank lines skipped; a .json file holding one array also works."""
    text = _decode_utf8(path, path.read_bytes())
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        return _read_json_array(path, text)
    records = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problem = f"{e.msg.removesuffix(' at')} at column {e.colno}"
            if line[e.pos : e.pos + 1] == "\x00":
                problem = f"a NUL byte at column {e.colno}; write it as \\u0000 inside a JSON string"
            raise _error(
                path,
                f"line {n}",
                f"is not valid JSON ({problem}). Each line must hold one JSON object, "
                'such as {"text": "...", "label": 1}.',
            ) from None
        if not isinstance(obj, dict):
            raise _error(path, f"line {n}", f'holds a JSON {type(obj).__name__}, not an object with a "text" field.')
        records.append(RawRecord(obj, f"line {n}", str(n)))
    return records


def _read_json_array(path: Path, text: str) -> list[RawRecord]:
    """A .json file whose content is one array of objects; records are named by item number."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise _error(path, f"line {e.lineno}", f"is not valid JSON ({e.msg} at column {e.colno}).") from None
    records = []
    for n, obj in enumerate(items, start=1):
        if not isinstance(obj, dict):
            raise _error(path, f"item {n}", f'is a JSON {type(obj).__name__}, not an object with a "text" field.')
        records.append(RawRecord(obj, f"item {n}", str(n)))
    return records


def _read_csv(path: Path, text_column: str = "text") -> list[RawRecord]:
    """CSV with a header row; records are named by the line they start on (the header is line 1)."""
    text = _decode_utf8(path, path.read_bytes())
    # Documents easily exceed the csv module's 128 KiB default field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    records = []
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            where = f"line {line}"
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [h.strip() for h in row]
                dup = sorted({h for h in header if header.count(h) > 1})
                if dup:
                    raise _error(path, where, f"the header repeats the column name(s) {', '.join(dup)}.")
                if text_column not in header:
                    raise _error(
                        path, where, f"the header has no {text_column!r} column (it has: {', '.join(header)})."
                    )
                continue
            if len(row) != len(header):
                raise _error(
                    path,
                    where,
                    f"has {len(row)} fields but the header has {len(header)}. A text containing commas, "
                    "quotes or line breaks must be quoted.",
                )
            records.append(RawRecord(dict(zip(header, row, strict=True)), where, str(line)))
    except csv.Error as e:
        raise _error(path, f"line {reader.line_num}", f"is not valid CSV ({e}).") from None
    if header is None:
        raise _error(path, None, f"is empty: expected a header row with at least a {text_column!r} column.")
    return records


def _require_text_column(
    path: Path, columns: Sequence[str], where: str | None = None, text_column: str = "text"
) -> None:
    """Tabular formats name their columns up front: fail once, clearly, when the text column is missing."""
    if text_column not in columns:
        raise _error(path, where, f"has no {text_column!r} column (it has: {', '.join(columns) or 'none'}).")


def _read_parquet(path: Path, text_column: str = "text") -> list[RawRecord]:
    """Parquet: records are named by 1-based row number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise _error(path, None, f"cannot be read as Parquet ({e}).") from None
    _require_text_column(path, table.column_names, text_column=text_column)
    return [RawRecord(row, f"row {n}", str(n)) for n, row in enumerate(table.to_pylist(), start=1)]


def _read_hf(path: Path, text_column: str = "text", label_column: str = "label") -> list[RawRecord]:
    """A save_to_disk directory: a Dataset, or a DatasetDict whose splits are all read (split -> 'split')."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for a directory that is not a saved dataset
        raise _error(
            path,
            None,
            "is a directory but not a dataset saved with Hugging Face datasets' save_to_disk "
            f"({str(e).rstrip('.')}). Pass a .jsonl, .csv or .parquet file, or such a directory.",
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        rows = _hf_rows(path, loaded, None, text_column, label_column)
        return [RawRecord(row, f"row {n}", str(n)) for n, row in enumerate(rows, start=1)]
    records = []
    for split, ds in loaded.items():
        for n, row in enumerate(_hf_rows(path, ds, f"split {split!r}", text_column, label_column), start=1):
            if _blank(row.get("split")):  # a 'split' column, where there is one, wins over the split name
                row["split"] = split
            records.append(RawRecord(row, f"split {split!r}, row {n}", f"{split}:{n}"))
    return records


def _hf_rows(
    path: Path, ds: Any, where: str | None = None, text_column: str = "text", label_column: str = "label"
) -> list[dict[str, Any]]:
    """Rows of one datasets.Dataset; a ClassLabel label becomes its name, whose order is not ours to guess."""
    import datasets

    _require_text_column(path, ds.column_names, where, text_column)
    rows = ds.to_list()
    feature = ds.features.get(label_column)
    if isinstance(feature, datasets.ClassLabel):
        for row in rows:
            if row[label_column] is not None and row[label_column] >= 0:
                row[label_column] = feature.int2str(row[label_column])
            else:  # -1 is datasets' explicit "no label": as if the record had no label field
                del row[label_column]
    return rows


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Columns:
    """Where a record keeps its text and label, and what its label values mean (``label_map``: value -> 1/0,
    looked up before the accepted spellings, case-insensitively)."""

    text: str = "text"
    label: str = "label"
    label_map: Mapping[str, int] | None = None

    def label_of(self, raw: Any) -> int:
        """1 or 0 for a raw label value; ValueError for a value neither mapped nor an accepted spelling."""
        if self.label_map:
            keys = [str(raw).strip().casefold()]
            if isinstance(raw, numbers.Real) and not isinstance(raw, bool) and float(raw).is_integer():
                keys.append(str(int(raw)))
            mapped = {str(k).strip().casefold(): int(v) for k, v in self.label_map.items()}
            for key in keys:
                if key in mapped:
                    return mapped[key]
        return normalize_label(raw)

    def accepted(self) -> str:
        """The label values this mapping accepts, for messages."""
        if self.label_map:
            mapped = ", ".join(f"{k}={v}" for k, v in self.label_map.items())
            return f"those of the label map ({mapped}) or {ACCEPTED}"
        return f"{ACCEPTED}; map other values with --label-map (e.g. yes=1,no=0)"


@dataclass
class _Pending:
    """A checked record whose id may still have to be generated."""

    path: Path | str
    where: str
    id_base: str
    id: str | None
    text: str
    label: int | None
    group: str | None
    meta: dict[str, Any] = field(default_factory=dict)


def _check_label_presence(path: Path | str, records: Sequence[RawRecord], columns: Columns, role: int | None) -> bool:
    """Whether the records carry labels; DataError if some records have one and others do not, if a label
    column is present but blank in every record, or if a label column named by the user is absent."""
    key = columns.label
    has = [not _blank(r.fields.get(key)) for r in records]
    if all(has):
        return bool(has)
    if not any(has):
        if role is None and any(key in r.fields for r in records):
            raise _error(
                path,
                None,
                f"the label column {key!r} is empty (blank or NaN) in every record. Fill in the labels, or drop "
                "the column to score the samples without evaluation.",
            )
        if role is None and key != "label":
            raise _error(path, None, f"has no label column {key!r} (check --label-column).")
        return False
    first_with = records[has.index(True)]
    first_without = records[has.index(False)]
    raise _error(
        path,
        first_without.where,
        f"has no label, but other records do ({first_with.where} is the first with one). Either every "
        "record has a label or none does (then samples are scored without evaluation).",
    )


def _text_of(path: Path | str, rec: RawRecord, column: str = "text") -> str:
    """The record's text; DataError when it is missing, not a string, or shows nothing (only whitespace,
    zero-width or other invisible characters)."""
    text = rec.fields.get(column)
    if text is None or (isinstance(text, float) and math.isnan(text)):
        raise _error(path, rec.where, f"has no text. Every record needs a non-empty {column!r} field.")
    if not isinstance(text, str):
        raise _error(path, rec.where, f"has a text of type {type(text).__name__} ({text!r}); it must be a string.")
    if not visible(text):
        raise _error(
            path,
            rec.where,
            "has an empty text (only whitespace or invisible characters such as zero-width spaces). Every "
            f"record needs a non-empty {column!r} field.",
        )
    return text


def _name_of(path: Path | str, rec: RawRecord, key: str) -> str | None:
    """An id or group value as a string (integers allowed), None when not given."""
    value = rec.fields.get(key)
    if _blank(value):
        return None
    if isinstance(value, bool) or not isinstance(value, str | numbers.Integral):
        raise _error(
            path,
            rec.where,
            f"has {key} {value!r} of type {type(value).__name__}; a {key} must be a string or an integer.",
        )
    return str(value)


def _id_stem(path: Path) -> str:
    """The prefix of generated ids: the file name without extension, or the directory name."""
    return path.name if path.is_dir() else path.stem


def _pending_samples(
    path: Path | str,
    records: Sequence[RawRecord],
    role: int | None,
    columns: Columns | None = None,
    stem: str | None = None,
) -> list[_Pending]:
    """Check every record of one file; role is 1/0 for a members/non-members file, None for labelled data."""
    columns = columns or Columns()
    if not records:
        raise _error(path, None, "contains no records.")
    labelled = _check_label_presence(path, records, columns, role)
    stem = stem if stem is not None else _id_stem(Path(path))
    reserved = {columns.text, columns.label, "id", "group", "split"}
    out = []
    for rec in records:
        text = _text_of(path, rec, columns.text)
        label = None
        if labelled:
            raw = rec.fields[columns.label]
            try:
                label = columns.label_of(raw)
            except ValueError:
                raise _error(
                    path, rec.where, f"has an unknown label {raw!r}. Accepted labels: {columns.accepted()}."
                ) from None
            if role is not None and label != role:
                raise _error(
                    path,
                    rec.where,
                    f"has label {raw!r} ({label_name(label)}), but this file was given as the "
                    f"{label_name(role)}s file. Fix the label, drop the label column, or move the record.",
                )
        if role is not None:
            label = role
        meta = {k: v for k, v in rec.fields.items() if k not in reserved}
        if not _blank(rec.fields.get("split")):
            meta["split"] = rec.fields["split"]
        out.append(
            _Pending(
                path,
                rec.where,
                f"{stem}:{rec.key}",
                _name_of(path, rec, "id"),
                text,
                label,
                _name_of(path, rec, "group"),
                meta,
            )
        )
    return out


def _assign_ids(pending: Sequence[_Pending]) -> Iterator[Sample]:
    """Check that given ids are unique, then generate the missing ones stably and without collisions."""
    owner: dict[str, _Pending] = {}
    for p in pending:
        if p.id is None:
            continue
        first = owner.get(p.id)
        if first is not None:
            where = f"{first.where} and {p.where}" if first.path == p.path else f"{first.where} and {p.path}, {p.where}"
            raise _error(
                first.path,
                where,
                f"both use the id {p.id!r}. Ids must be unique; drop the id column to have miakit generate them.",
            )
        owner[p.id] = p
    for p in pending:
        if p.id is None:
            candidate, k = p.id_base, 2
            while candidate in owner:
                candidate, k = f"{p.id_base}~{k}", k + 1
            owner[candidate] = p
            p.id = candidate
        yield Sample(p.id, p.text, p.label, p.group, p.meta)


# ---------------------------------------------------------------------------------------------- entry


def load_dataset(
    data: PathLike | None = None,
    *,
    members: PathLike | None = None,
    nonmembers: PathLike | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    text_column: str = "text",
    label_column: str = "label",
    label_map: Mapping[str, int] | None = None,
) -> MembershipDataset:
    """Load candidates from one labelled (or unlabelled) file, or a members file plus a non-members file; the
    text and label are read from ``text_column`` and ``label_column``, labels through ``label_map``."""
    if data is not None and (members is not None or nonmembers is not None):
        raise DataError(
            f"Got both a data file ({data}) and a members/non-members file "
            f"({members if members is not None else nonmembers}). Pass either one file with a label "
            "column, or a members file and a non-members file."
        )
    if data is None and (members is None or nonmembers is None):
        if members is None and nonmembers is None:
            got = "No data given."
        elif members is not None:
            got = f"Got a members file ({members}) but no non-members file."
        else:
            got = f"Got a non-members file ({nonmembers}) but no members file."
        raise DataError(f"{got} Pass one file with a label column, or both a members and a non-members file.")
    _check_max_samples(max_samples)
    columns = Columns(text_column, label_column, label_map)

    if data is not None:
        path = Path(data)
        pending = _pending_samples(path, read_records(path, text_column, label_column), None, columns)
        source = str(path)
    else:
        m, n = Path(members), Path(nonmembers)  # type: ignore[arg-type]
        if m.resolve() == n.resolve():
            raise _error(m, None, "was given as both the members and the non-members file.")
        pending = _pending_samples(m, read_records(m, text_column, label_column), 1, columns)
        pending += _pending_samples(n, read_records(n, text_column, label_column), 0, columns)
        source = f"members={m}, nonmembers={n}"
    return _finish(pending, source, max_samples, seed)


def _check_max_samples(max_samples: int | None) -> None:
    if max_samples is not None and (
        isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1
    ):
        raise MiakitError(f"max_samples must be a positive integer, got {max_samples!r}.")


def _finish(pending: list[_Pending], source: str, max_samples: int | None, seed: int) -> MembershipDataset:
    """Samples with their ids, optionally a stratified subset, with the dataset's warnings."""
    samples = list(_assign_ids(pending))
    if max_samples is not None:
        keep = stratified_indices([s.label for s in samples], max_samples, seed)
        samples = [samples[i] for i in keep]
    return MembershipDataset(samples, source, dataset_warnings(samples))


def dataset_from_records(
    records: Any,
    *,
    source: str = "python",
    max_samples: int | None = None,
    seed: int = 0,
    text_column: str = "text",
    label_column: str = "label",
    label_map: Mapping[str, int] | None = None,
) -> MembershipDataset:
    """Samples from Python objects: a pandas DataFrame or a list of dicts (one per record, with the same fields a
    file would have), checked exactly like a file; errors name the row (1-based)."""
    _check_max_samples(max_samples)
    columns_of = getattr(records, "columns", None)
    if columns_of is not None and callable(getattr(records, "to_dict", None)):  # a DataFrame
        names = [str(c) for c in columns_of]
        if text_column not in names:
            raise DataError(f"The DataFrame has no {text_column!r} column (it has: {', '.join(names) or 'none'}).")
        rows = [{str(k): v for k, v in row.items()} for row in records.to_dict("records")]
        source = f"{source} (DataFrame)"
    else:
        rows = list(records)
        bad = next((i for i, r in enumerate(rows, start=1) if not isinstance(r, Mapping)), None)
        if bad is not None:
            raise DataError(
                f"Data given in Python must be a DataFrame or a list of dicts (or of Sample); item {bad} is a "
                f"{type(rows[bad - 1]).__name__}."
            )
        rows = [{str(k): v for k, v in r.items()} for r in rows]
    raw = [RawRecord(r, f"row {n}", str(n)) for n, r in enumerate(rows, start=1)]
    pending = _pending_samples(source, raw, None, Columns(text_column, label_column, label_map), stem="row")
    return _finish(pending, source, max_samples, seed)


def load_calibration(
    calibration: PathLike | None = None,
    nonmembers: PathLike | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_map: Mapping[str, int] | None = None,
) -> MembershipDataset | None:
    """Calibration samples: a labelled file, a file of known non-members (e.g. .txt, one text per line, labelled
    0), or both together (ids unique across the two); None when neither is given."""
    if calibration is None and nonmembers is None:
        return None
    columns = Columns(text_column, label_column, label_map)
    pending: list[_Pending] = []
    sources = []
    if calibration is not None:
        path = Path(calibration)
        pending += _pending_samples(path, read_records(path, text_column, label_column), None, columns)
        if any(p.label is None for p in pending):
            raise _error(
                path,
                None,
                "has no labels. A calibration file must say which texts are members; for texts known not to be "
                "members, give them with --calibration-nonmembers instead.",
            )
        sources.append(str(path))
    if nonmembers is not None:
        path = Path(nonmembers)
        pending += _pending_samples(path, read_records(path, text_column, label_column), 0, columns)
        sources.append(f"non-members={path}")
    return MembershipDataset(list(_assign_ids(pending)), " + ".join(sources))
