"""The data stage: a run's samples from a spec (file, member/non-member files, benchmark or Python objects), the
calibration split, and chunking into documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from miakit.data import MembershipDataset, Sample, load_dataset
from miakit.data.calibration import split_calibration
from miakit.data.readers import dataset_from_records, load_calibration
from miakit.errors import MiakitError


@dataclass
class RunData:
    """Evaluated samples, the calibration samples (never scored) and how they were split."""

    evaluation: MembershipDataset
    calibration: MembershipDataset | None
    calibration_info: dict[str, Any]


def load_samples(spec: Any, data: Any = None) -> MembershipDataset:
    """The samples ``spec`` names (data / members + nonmembers / benchmark), or ``data`` given in Python (a
    ``MembershipDataset``, a list of ``Sample``, a pandas DataFrame or a list of dicts)."""
    mapping = spec.data_mapping()
    if isinstance(data, MembershipDataset):
        dataset = data
    elif data is not None and not isinstance(data, str):
        samples = data if hasattr(data, "columns") else list(data)
        if isinstance(samples, list) and samples and all(isinstance(s, Sample) for s in samples):
            dataset = MembershipDataset(samples, source="python")
        elif isinstance(samples, list) and any(isinstance(s, Sample) for s in samples):
            raise MiakitError("data given in Python mixes Sample objects with other items; give one kind.")
        else:
            dataset = dataset_from_records(samples, max_samples=spec.max_samples, seed=spec.seed, **mapping)
    elif spec.benchmark:
        from miakit.data.benchmarks import load_benchmark

        dataset = load_benchmark(spec.benchmark, path=spec.benchmark_path, max_samples=spec.max_samples, seed=spec.seed)
    else:
        dataset = load_dataset(
            spec.data,
            members=spec.members,
            nonmembers=spec.nonmembers,
            max_samples=spec.max_samples,
            seed=spec.seed,
            **mapping,
        )
    if not len(dataset):
        raise MiakitError(f"No samples to score in {dataset.source or 'the data'}.")
    return dataset


def chunk_dataset(dataset: MembershipDataset, words: int) -> MembershipDataset:
    """Every sample cut into chunks of ``words`` words: ids ``ID#k``, group = the sample's group or its id."""
    from miakit.evaluate.documents import chunk_text

    chunks = [
        Sample(f"{s.id}#{k}", text, s.label, s.document, dict(s.meta))
        for s in dataset.samples
        for k, text in enumerate(chunk_text(s.text, words))
    ]
    return MembershipDataset(chunks, dataset.source, list(dataset.warnings), dataset.shift)


def prepare_data(spec: Any, data: Any = None) -> RunData:
    """Load, split off the calibration set (whole documents), then chunk both sides alike (``chunk_words``)."""
    mapping = spec.data_mapping()
    split = split_calibration(
        load_samples(spec, data),
        calibration=load_calibration(spec.calibration, **mapping) if spec.calibration else None,
        fraction=spec.calibration_fraction,
        seed=spec.seed,
        nonmembers=load_calibration(None, spec.calibration_nonmembers, **mapping)
        if spec.calibration_nonmembers
        else None,
    )
    evaluation, calibration = split.evaluation, split.calibration
    if spec.chunk_words:  # after the split, so a document's chunks are all on one side
        evaluation = chunk_dataset(evaluation, spec.chunk_words)
        if calibration is not None:
            calibration = chunk_dataset(calibration, spec.chunk_words)
    return RunData(evaluation, calibration, split.info)
