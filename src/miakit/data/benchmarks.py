"""Loaders for published membership-inference benchmarks: WikiMIA, MIMIR, BookMIA, the VL-MIA text part and
the blind-baseline paper's datasets (Gutenberg, arXiv, Multi-Web, LAION-MI).

A spec names the benchmark and its part (``wikimia:32``, ``mimir:wikipedia_(en):ngram_13_0.8``, ``bookmia``,
``vlmia-text:llava_v15_gpt_text:32``). Data comes from a local copy (``path``) or, without one, from the
Hugging Face Hub through ``datasets.load_dataset`` (network). Local copies may be:

* a directory written by ``datasets``' ``save_to_disk``: a DatasetDict holding the split, or a single Dataset;
* a directory of one file per split: ``<split>.jsonl`` (also ``.json``, ``.parquet``), e.g.
  ``WikiMIA_length32.jsonl``;
* a single JSON Lines / JSON / Parquet file holding the split (the split name is then not checked).

Layouts (checked against the public loaders and dataset cards, see BENCHMARKS):

* WikiMIA (``swj0419/WikiMIA``): splits ``WikiMIA_length32/64/128/256``, fields ``input`` and ``label``
  (1 = member).
* MIMIR (``iamgroot42/mimir``): config = domain, split = n-gram filter (``ngram_7_0.2``, ``ngram_13_0.2``,
  ``ngram_13_0.8``; ``temporal_arxiv`` has month splits, ``full_pile``/``c4``/``temporal_wiki`` only
  ``none``); each row holds a ``member`` and a ``nonmember`` text (plus neighbours, ignored here), so every
  row gives one member and one non-member sample. MIMIR is a loading-script dataset: recent ``datasets``
  releases no longer run such scripts, so download its JSONL files and pass ``path`` if the Hub load fails.
* BookMIA (``swj0419/BookMIA``): one ``train`` split (file ``book_data.jsonl``), fields ``snippet``,
  ``label`` (1 = member), ``book_id`` / ``book`` (the book becomes ``Sample.group``, for document-level
  inference).
* VL-MIA text (``JaineLi/VL-MIA-text``): configs ``llava_v15_gpt_text`` (splits ``length_4/16/32/64``) and
  ``minigpt4_stage2_text`` (``length_16/32/64``), fields ``input`` and ``label`` (1 = member). A local file or
  directory with the same ``input``/``label`` fields works too.
* Blind-MIA (``blind-mia:<dataset>``, GitHub ``ethz-spylab/Blind-MIA``, not on the Hub): folders of member and
  non-member files, read by ``miakit.data.blind_mia``; a path (the clone) is required.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miakit.data.blind_mia import BLIND_MIA_DATASETS, BLIND_MIA_REPO, read_blind_mia
from miakit.data.labels import ACCEPTED, normalize_label
from miakit.data.readers import _read_jsonl, detect_format
from miakit.data.sample import MembershipDataset, Sample
from miakit.data.subset import stratified_indices
from miakit.data.validate import dataset_warnings
from miakit.errors import DataError, MiakitError

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class BenchmarkInfo:
    """What a benchmark is, where it lives, how its members were chosen and what is known to bias it."""

    name: str
    hub_id: str
    how_members_were_defined: str
    known_bias: str
    distribution_shift: bool = False  # True: members and non-members differ in more than membership


BENCHMARKS: dict[str, BenchmarkInfo] = {
    "wikimia": BenchmarkInfo(
        name="WikiMIA",
        hub_id="swj0419/WikiMIA",
        how_members_were_defined=(
            "Members are snippets of Wikipedia event pages written before 2017 (so in the training data of models "
            "released after that); non-members are snippets of pages about events after 2023."
        ),
        known_bias=(
            "WikiMIA members and non-members come from different time periods (before 2017 vs. after 2023), a "
            "temporal distribution shift: blind baselines that never query the model beat published attacks on "
            "it, so a high score may measure the date of the text, not membership."
        ),
        distribution_shift=True,
    ),
    "mimir": BenchmarkInfo(
        name="MIMIR",
        hub_id="iamgroot42/mimir",
        how_members_were_defined=(
            "Members are documents from the Pile training split (the training data of the Pythia models); "
            "non-members are from the Pile test split of the same domain, filtered by n-gram overlap with "
            "the training data (the split name, e.g. ngram_13_0.8, gives the n-gram size and the overlap limit)."
        ),
        known_bias=(
            "MIMIR's members and non-members are close to identically distributed, so attacks score near chance "
            "on most domains; the stricter filters (ngram_7_0.2) and the temporal configs select non-members that "
            "differ from the training data and make membership look easier than it is."
        ),
    ),
    "bookmia": BenchmarkInfo(
        name="BookMIA",
        hub_id="swj0419/BookMIA",
        how_members_were_defined=(
            "Members are snippets of books that OpenAI models (e.g. text-davinci-003) are known to have "
            "memorised; non-members are snippets of books first published in 2023, after those models."
        ),
        known_bias=(
            "BookMIA members and non-members are books from different periods (older classics vs. books "
            "published in 2023), a temporal distribution shift: blind baselines separate them without the model."
        ),
        distribution_shift=True,
    ),
    "vlmia-text": BenchmarkInfo(
        name="VL-MIA (text)",
        hub_id="JaineLi/VL-MIA-text",
        how_members_were_defined=(
            "Members are answers from the instruction-tuning data of the vision-language model (LLaVA 1.5 or "
            "MiniGPT-4 stage 2); non-members are answers generated by GPT-4 for the same kind of prompts, cut to "
            "the same length."
        ),
        known_bias=(
            "VL-MIA text non-members were written by a different model (GPT-4) than the members, a "
            "distribution shift in style: a score may detect the generator rather than membership."
        ),
        distribution_shift=True,
    ),
}

# The blind-baseline paper's own datasets (spec ``blind-mia:<name>``), read from a clone of its GitHub repository.
BLIND_MIA_INFO: dict[str, BenchmarkInfo] = {
    "gutenberg": BenchmarkInfo(
        name="Blind-MIA Gutenberg",
        hub_id="",
        how_members_were_defined=(
            "Whole Project Gutenberg books (after Meeus et al. 2024, for OpenLLaMA): members are books in PG-19, "
            "part of RedPajama, the training data; non-members are books added to Project Gutenberg after the "
            "training data was collected."
        ),
        known_bias=(
            "Blind-MIA Gutenberg members and non-members differ in when the books were added to Project Gutenberg "
            "(and so in era, spelling and front matter): a blind bag-of-words reaches AUROC 96.1 on it "
            "(Das et al. 2024), above every published attack."
        ),
        distribution_shift=True,
    ),
    "arxiv1m": BenchmarkInfo(
        name="Blind-MIA arXiv (all vs 1 month)",
        hub_id="",
        how_members_were_defined=(
            "Whole arXiv papers (LaTeX source, after Meeus et al. 2024): members are papers in the RedPajama arXiv "
            "set, from all months before its cutoff; non-members are papers from the one month after it."
        ),
        known_bias=(
            "Blind-MIA arXiv all-vs-1-month non-members all come from one later month, while members span years: "
            "the dates and references in the text give membership away (blind date detection: AUROC 72.3, "
            "Das et al. 2024)."
        ),
        distribution_shift=True,
    ),
    "arxiv1m_1m": BenchmarkInfo(
        name="Blind-MIA arXiv (1 month vs 1 month)",
        hub_id="",
        how_members_were_defined=(
            "Whole arXiv papers from the RedPajama arXiv dump: members are papers of February 2023 (in the training "
            "data), non-members papers of March 2023; written as member.npy / nonmember.npy by the repository's "
            "data_script_1m_1m.py."
        ),
        known_bias=(
            "Blind-MIA arXiv 1-month-vs-1-month is the least shifted of these sets (blind TPR 2.7% at 1% FPR, "
            "Das et al. 2024), but members and non-members are still a month apart, so the split is not random."
        ),
        distribution_shift=True,
    ),
    "multi_web": BenchmarkInfo(
        name="Blind-MIA Multi-Web",
        hub_id="",
        how_members_were_defined=(
            "Image captions for multimodal (CLIP-style) models: members from the model's training captions, "
            "non-members web alt-texts from another source (as collected for the blind-baseline paper)."
        ),
        known_bias=(
            "Blind-MIA Multi-Web members and non-members come from different caption sources: in the repository's "
            "files every member caption is lower case (about 6 words) while 98% of non-members have capitals "
            "(about 17 words); a blind bag-of-words reaches AUROC 98 (Das et al. 2024)."
        ),
        distribution_shift=True,
    ),
    "laion_mi": BenchmarkInfo(
        name="Blind-MIA LAION-MI",
        hub_id="",
        how_members_were_defined=(
            "Captions of LAION-MI (Dubinski et al. 2024, for Stable Diffusion): members are LAION captions used "
            "in training, non-members captions of images that were not."
        ),
        known_bias=(
            "Blind-MIA LAION-MI members and non-members were not drawn at random from one pool: blind greedy "
            "n-gram rules reach 8.9% TPR at 1% FPR against 2.5% for the best published attack (Das et al. 2024)."
        ),
        distribution_shift=True,
    ),
}
BENCHMARKS["blind-mia"] = BenchmarkInfo(
    name="Blind-MIA datasets",
    hub_id="",
    how_members_were_defined="See the dataset: "
    + "; ".join(f"{k}: {v.how_members_were_defined}" for k, v in BLIND_MIA_INFO.items()),
    known_bias="Every Blind-MIA dataset has members and non-members from different distributions (Das et al. 2024).",
    distribution_shift=True,
)

WIKIMIA_LENGTHS = (32, 64, 128, 256)
MIMIR_NGRAM_SPLITS = ("ngram_7_0.2", "ngram_13_0.2", "ngram_13_0.8")
MIMIR_DEFAULT_SPLIT = "ngram_13_0.8"
MIMIR_SPLITS: dict[str, tuple[str, ...]] = {
    **{
        d: MIMIR_NGRAM_SPLITS
        for d in (
            "arxiv",
            "dm_mathematics",
            "github",
            "hackernews",
            "pile_cc",
            "pubmed_central",
            "wikipedia_(en)",
        )
    },
    "full_pile": ("none",),
    "c4": ("none",),
    "temporal_wiki": ("none",),
    "temporal_arxiv": ("2020_08", "2021_01", "2021_06", "2022_01", "2022_06", "2023_01", "2023_06"),
}
VLMIA_SPLITS: dict[str, tuple[str, ...]] = {
    "llava_v15_gpt_text": ("length_4", "length_16", "length_32", "length_64"),
    "minigpt4_stage2_text": ("length_16", "length_32", "length_64"),
}
VLMIA_DEFAULT_SPLIT = "length_32"

VALID_SPECS = (
    "wikimia:32, wikimia:64, wikimia:128, wikimia:256; "
    f"mimir:<domain>[:<split>] with domain one of {', '.join(MIMIR_SPLITS)} and split one of "
    f"{', '.join(MIMIR_NGRAM_SPLITS)} (default {MIMIR_DEFAULT_SPLIT}; temporal_arxiv: a month such as 2023_06; "
    "full_pile, c4, temporal_wiki: none); bookmia; "
    f"vlmia-text:<config>[:<length>] with config one of {', '.join(VLMIA_SPLITS)} and length 4, 16, 32 or 64 "
    f"(default {VLMIA_DEFAULT_SPLIT.removeprefix('length_')}); "
    f"blind-mia:<dataset> with dataset one of {', '.join(BLIND_MIA_DATASETS)} (a clone of {BLIND_MIA_REPO}, "
    "given with --benchmark-path)"
)


@dataclass(frozen=True)
class _Spec:
    """A parsed spec: registry key, HF config (or None), split, and the fields to read."""

    key: str
    config: str | None
    split: str


def _bad_spec(spec: str, problem: str) -> DataError:
    return DataError(f"Benchmark spec {spec!r}: {problem}. Valid specs: {VALID_SPECS}.")


def parse_spec(spec: str) -> _Spec:
    """Split a spec into benchmark, config and split; DataError listing the valid specs when malformed."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad_spec(str(spec), "is empty")
    parts = [p.strip() for p in spec.strip().split(":")]
    key, rest = parts[0].lower(), parts[1:]
    if key not in BENCHMARKS:
        raise _bad_spec(spec, f"unknown benchmark {parts[0]!r} (known: {', '.join(BENCHMARKS)})")
    if any(not p for p in rest):
        raise _bad_spec(spec, "has an empty part")
    if key == "wikimia":
        if len(rest) != 1:
            raise _bad_spec(spec, "WikiMIA needs exactly one length, as in wikimia:32")
        length = rest[0].removeprefix("WikiMIA_length")
        if not length.isdigit() or int(length) not in WIKIMIA_LENGTHS:
            raise _bad_spec(
                spec, f"WikiMIA has no length {rest[0]!r} (lengths: {', '.join(map(str, WIKIMIA_LENGTHS))})"
            )
        return _Spec(key, None, f"WikiMIA_length{int(length)}")
    if key == "mimir":
        if len(rest) not in (1, 2):
            raise _bad_spec(spec, "MIMIR takes a domain and an optional split, as in mimir:pile_cc:ngram_13_0.8")
        domain = rest[0]
        if domain not in MIMIR_SPLITS:
            raise _bad_spec(spec, f"MIMIR has no domain {domain!r}")
        splits = MIMIR_SPLITS[domain]
        if len(rest) == 2:
            split = rest[1]
        elif MIMIR_DEFAULT_SPLIT in splits:
            split = MIMIR_DEFAULT_SPLIT
        elif len(splits) == 1:
            split = splits[0]
        else:
            raise _bad_spec(spec, f"MIMIR domain {domain!r} needs a split, one of {', '.join(splits)}")
        if split not in splits:
            raise _bad_spec(spec, f"MIMIR domain {domain!r} has no split {split!r} (splits: {', '.join(splits)})")
        return _Spec(key, domain, split)
    if key == "blind-mia":
        if len(rest) != 1 or rest[0] not in BLIND_MIA_DATASETS:
            raise _bad_spec(spec, f"Blind-MIA needs one dataset, one of {', '.join(BLIND_MIA_DATASETS)}")
        return _Spec(key, None, rest[0])
    if key == "bookmia":
        if rest not in ([], ["train"]):
            raise _bad_spec(spec, "BookMIA has a single part; write just bookmia")
        return _Spec(key, None, "train")
    # vlmia-text
    if len(rest) not in (1, 2):
        raise _bad_spec(
            spec, "VL-MIA text takes a config and an optional length, as in vlmia-text:llava_v15_gpt_text:32"
        )
    config = rest[0]
    if config not in VLMIA_SPLITS:
        raise _bad_spec(spec, f"VL-MIA text has no config {config!r}")
    split = VLMIA_DEFAULT_SPLIT if len(rest) == 1 else "length_" + rest[1].removeprefix("length_")
    if split not in VLMIA_SPLITS[config]:
        raise _bad_spec(
            spec, f"VL-MIA text config {config!r} has no split {split!r} (splits: {', '.join(VLMIA_SPLITS[config])})"
        )
    return _Spec(key, config, split)


# ---------------------------------------------------------------------------------------------- sources


def _hub_rows(spec: str, parsed: _Spec) -> list[dict[str, Any]]:
    """Rows of the split, downloaded with datasets.load_dataset; any failure becomes a DataError."""
    info = BENCHMARKS[parsed.key]
    try:
        import datasets

        ds = datasets.load_dataset(info.hub_id, parsed.config, split=parsed.split)
        return list(ds.to_list())
    except Exception as e:  # network, authentication, missing script support, ...: all mean "get it yourself"
        config = f", {parsed.config!r}" if parsed.config else ""
        raise DataError(
            f"Could not load benchmark {spec!r} from the Hugging Face Hub ({info.hub_id}{config}, split "
            f"{parsed.split!r}): {str(e).strip().rstrip('.') or type(e).__name__}. Download it on a machine with "
            f"network access (for example datasets.load_dataset({info.hub_id!r}{config}).save_to_disk(DIR), or its "
            "data files) and pass that directory or file with --benchmark-path."
        ) from None


def _is_saved_dataset(path: Path) -> bool:
    return any((path / name).is_file() for name in ("dataset_dict.json", "state.json", "dataset_info.json"))


def _disk_rows(path: Path, split: str) -> list[dict[str, Any]]:
    """Rows of `split` from a save_to_disk directory (a DatasetDict) or all rows of a saved Dataset."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for a damaged directory
        raise DataError(f"{path}: cannot be read as a dataset saved with save_to_disk ({e}).") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(
                f"{path}: the saved dataset has no split {split!r} (it has: {', '.join(loaded) or 'none'})."
            )
        loaded = loaded[split]
    rows = loaded.to_list()
    feature = loaded.features.get("label")
    if isinstance(feature, datasets.ClassLabel):  # a ClassLabel stores indices; its names carry the meaning
        for row in rows:
            row["label"] = feature.int2str(row["label"]) if row["label"] is not None and row["label"] >= 0 else None
    return rows


def _file_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of one JSON Lines / JSON array / Parquet file."""
    fmt = detect_format(path)
    if fmt == "jsonl":
        return [r.fields for r in _read_jsonl(path)]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{path}: cannot be read as Parquet ({e}).") from None
    raise DataError(f"{path}: benchmarks are read from JSON Lines, JSON or Parquet files, not {fmt.upper()}.")


def _local_rows(path: Path, split: str) -> tuple[list[dict[str, Any]], str]:
    """Rows of `split` from a local copy, and where they were read from (for messages)."""
    detect_format(path)  # a clear error for a missing path
    if path.is_dir():
        if _is_saved_dataset(path):
            return _disk_rows(path, split), str(path)
        for ext in (".jsonl", ".json", ".parquet"):
            candidate = path / f"{split}{ext}"
            if candidate.is_file():
                return _file_rows(candidate), str(candidate)
        sub = path / split
        if sub.is_dir() and _is_saved_dataset(sub):
            return _disk_rows(sub, split), str(sub)
        have = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        raise DataError(
            f"{path}: no split {split!r} here: expected a save_to_disk directory or a file named {split}.jsonl "
            f"(or .json, .parquet); the directory holds: {', '.join(have) or 'nothing'}."
        )
    return _file_rows(path), str(path)


# ---------------------------------------------------------------------------------------------- rows


def _text(where: str, row: dict[str, Any], field: str) -> str:
    value = row.get(field)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where}: has no {field!r} field (it has: {', '.join(map(str, row)) or 'none'}).")
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {field!r} must be a non-empty string, got {value!r}.")
    return value


def _label(where: str, row: dict[str, Any]) -> int:
    if "label" not in row:
        raise DataError(f"{where}: has no 'label' field (it has: {', '.join(map(str, row)) or 'none'}).")
    try:
        return normalize_label(row["label"])
    except ValueError:
        raise DataError(f"{where}: has an unknown label {row['label']!r}. Accepted labels: {ACCEPTED}.") from None


def _samples(parsed: _Spec, rows: list[dict[str, Any]], origin: str) -> list[Sample]:
    """Turn the rows of one split into samples, by the benchmark's own field names."""
    if not rows:
        raise DataError(f"{origin}: split {parsed.split!r} contains no rows.")
    base = {"benchmark": parsed.key, "split": parsed.split}
    if parsed.config is not None:
        base["config"] = parsed.config
    out: list[Sample] = []
    for n, row in enumerate(rows):
        where = f"{origin}, row {n}"
        stem = f"{parsed.key}-{parsed.split}-{n}"
        if parsed.key == "mimir":
            for suffix, field, label in (("m", "member", 1), ("n", "nonmember", 0)):
                text = _text(where, row, field)
                out.append(Sample(f"{stem}-{suffix}", text, label, None, dict(base)))
        elif parsed.key == "bookmia":
            group_value = row.get("book_id") if row.get("book_id") not in (None, "") else row.get("book")
            meta = dict(base)
            for k in ("book", "book_id", "snippet_id"):
                if row.get(k) is not None:
                    meta[k] = row[k]
            group = None if group_value in (None, "") else str(group_value)
            out.append(Sample(stem, _text(where, row, "snippet"), _label(where, row), group, meta))
        else:  # wikimia, vlmia-text
            out.append(Sample(stem, _text(where, row, "input"), _label(where, row), None, dict(base)))
    return out


# ---------------------------------------------------------------------------------------------- entry


def load_benchmark(
    spec: str,
    *,
    path: str | Path | None = None,
    max_samples: int | None = None,
    seed: int = 0,
) -> MembershipDataset:
    """Load a published benchmark as a MembershipDataset.

    spec: ``wikimia:<32|64|128|256>``, ``mimir:<domain>[:<split>]``, ``bookmia``,
    ``vlmia-text:<config>[:<length>]`` or ``blind-mia:<dataset>``. path: a local copy (save_to_disk directory,
    directory of ``<split>.jsonl`` files, or one JSONL/JSON/Parquet file; for blind-mia the repository clone);
    without it the split is downloaded with ``datasets.load_dataset`` and a failure raises DataError asking for
    ``--benchmark-path``.
    max_samples: keep a seeded, label-stratified subset of that size (original order kept).

    Ids are ``<benchmark>-<split>-<row>`` (row from 0; MIMIR adds ``-m``/``-n``), meta holds ``benchmark`` and
    ``split`` (and ``config`` for MIMIR / VL-MIA), source is the spec, and warnings start with the benchmark's
    known bias when its members and non-members differ in distribution.
    """
    parsed = parse_spec(spec)
    if max_samples is not None and (
        isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1
    ):
        raise MiakitError(f"max_samples must be a positive integer, got {max_samples!r}.")
    warnings = []
    if parsed.key == "blind-mia":
        if path is None:
            raise DataError(
                f"Benchmark {spec!r} is not on the Hugging Face Hub: its files are in the GitHub repository "
                f"{BLIND_MIA_REPO} (data/{parsed.split}). Clone it and pass the clone (or its data/{parsed.split} "
                "folder) with --benchmark-path."
            )
        samples, dropped = read_blind_mia(Path(path), parsed.split)
        if dropped:
            warnings.append(f"{dropped} blank entries of {spec} were skipped.")
    else:
        if path is None:
            rows, origin = _hub_rows(spec, parsed), BENCHMARKS[parsed.key].hub_id
        else:
            rows, origin = _local_rows(Path(path), parsed.split)
        samples = _samples(parsed, rows, origin)
    if max_samples is not None:
        keep = stratified_indices([s.label for s in samples], max_samples, seed)
        samples = [samples[i] for i in keep]
    info = benchmark_info(spec)
    shift = None
    if info.distribution_shift or (parsed.key == "mimir" and _mimir_shifted(parsed)):
        shift = info.known_bias
        warnings.insert(0, info.known_bias)
    warnings.extend(dataset_warnings(samples))
    return MembershipDataset(samples, spec, warnings, shift)


def benchmark_info(spec: str) -> BenchmarkInfo:
    """What a spec's benchmark is (for blind-mia, the named dataset): definition of members and known bias."""
    parsed = parse_spec(spec)
    if parsed.key == "blind-mia":
        return BLIND_MIA_INFO[parsed.split]
    return BENCHMARKS[parsed.key]


def _mimir_shifted(parsed: _Spec) -> bool:
    """MIMIR parts whose non-members were chosen to differ: the strict 7-gram filter and the temporal configs."""
    return parsed.split == "ngram_7_0.2" or (parsed.config or "").startswith("temporal_")
