"""The calibration protocol: known samples that attacks may fit on, kept out of evaluation.

Attacks that learn (a ReCaLL prefix, a probe) fit only on a calibration set: a separate labelled file, or a
seeded stratified fraction held out of the data. A calibration text is never scored: if the user's
calibration file overlaps the evaluated data (the same text, or another chunk of a calibration document,
i.e. the same ``group``), the overlapping samples are removed from scoring and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from miakit.data.sample import MembershipDataset
from miakit.data.subset import stratified_indices
from miakit.errors import DataError

__all__ = ["CalibrationSplit", "split_calibration"]


@dataclass
class CalibrationSplit:
    """Evaluation samples, calibration samples, and how the split was made (for the report)."""

    evaluation: MembershipDataset
    calibration: MembershipDataset | None
    info: dict[str, Any] = field(default_factory=dict)


def split_calibration(
    data: MembershipDataset,
    *,
    calibration: MembershipDataset | None = None,
    fraction: float | None = None,
    seed: int = 0,
    nonmembers: MembershipDataset | None = None,
) -> CalibrationSplit:
    """Separate calibration from evaluation: ``calibration`` given (overlap removed from ``data``), or a
    stratified ``fraction`` of ``data`` held out, or no calibration at all. ``nonmembers``: texts known not to
    be members, added to the held-out fraction (overlap with ``data`` removed too)."""
    if calibration is not None and fraction is not None:
        raise DataError("Give either a calibration file or a calibration fraction, not both.")
    if nonmembers is not None and fraction is None:
        return split_calibration(data, calibration=_merge(calibration, nonmembers))
    if nonmembers is not None:
        held = split_calibration(data, fraction=fraction, seed=seed)
        extra = split_calibration(held.evaluation, calibration=nonmembers)
        merged = _merge(held.calibration, nonmembers)
        info = {
            **held.info,
            "source": f"{held.info['source']} + {nonmembers.source}",
            "removed_from_scoring": extra.info["removed_from_scoring"],
            "n_members": sum(1 for v in merged.labels if v == 1),
            "n_nonmembers": sum(1 for v in merged.labels if v == 0),
        }
        return CalibrationSplit(extra.evaluation, merged, info)
    if calibration is None and fraction is None:
        return CalibrationSplit(data, None, {"source": None})
    if calibration is not None:
        if not calibration.is_labelled:
            raise DataError(f"The calibration data {calibration.source} must be labelled (member / non-member).")
        texts = {s.text for s in calibration.samples}
        documents = {s.group for s in calibration.samples if s.group is not None}
        same_text = [i for i, s in enumerate(data.samples) if s.text in texts]
        same_document = [
            i
            for i, s in enumerate(data.samples)
            if s.text not in texts and s.group is not None and s.group in documents
        ]
        dropped = set(same_text) | set(same_document)
        evaluation = data.subset([i for i in range(len(data)) if i not in dropped])
        info = {"source": calibration.source, "removed_from_scoring": len(dropped)}
        if same_document:  # chunks of a calibration document: that document is on the calibration side
            info["removed_same_document"] = len(same_document)
    else:
        assert fraction is not None
        if not 0.0 < fraction < 1.0:
            raise DataError(f"--calibration-fraction must lie strictly between 0 and 1 (got {fraction}).")
        if not data.is_labelled:
            raise DataError("--calibration-fraction needs labelled data.")
        held_set, unit = _held_out(data, fraction, seed)
        calibration = data.subset(sorted(held_set))
        evaluation = data.subset([i for i in range(len(data)) if i not in held_set])
        info = {
            "source": f"{fraction:g} of the {unit} of {data.source or 'the data'} (stratified, seed {seed})",
            "fraction": fraction,
            "unit": unit,
        }
    labels = calibration.labels
    info.update(n_members=sum(1 for v in labels if v == 1), n_nonmembers=sum(1 for v in labels if v == 0))
    if not len(evaluation):
        raise DataError("Every sample of the data is also in the calibration set: nothing is left to score.")
    return CalibrationSplit(evaluation, calibration, info)


def _held_out(data: MembershipDataset, fraction: float, seed: int) -> tuple[set[int], str]:
    """Indices held out for calibration: a stratified fraction of the samples, or of the documents (whole
    groups) when samples carry a ``group``, so no document has chunks on both sides."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(data.samples):
        groups.setdefault(s.document, []).append(i)
    grouped = len(groups) < len(data)
    keys = list(groups)
    if grouped:
        labels = []
        for key in keys:
            found = {data.samples[i].label for i in groups[key]}
            if len(found) != 1:
                raise DataError(f"Document {key!r} mixes member and non-member samples; a group must have one label.")
            labels.append(found.pop())
    else:
        labels = list(data.labels)
    unit = "documents" if grouped else "samples"
    n = max(2, round(fraction * len(keys)))
    if n >= len(keys) - 1:
        raise DataError(f"A calibration fraction of {fraction} leaves too few {unit} to evaluate.")
    chosen = stratified_indices(labels, n, seed=seed)
    return {i for k in chosen for i in groups[keys[k]]}, unit


def _merge(first: MembershipDataset | None, second: MembershipDataset) -> MembershipDataset:
    """Two calibration sets as one; an id in both is an error (calibration ids name the fitted prefixes)."""
    if first is None:
        return second
    ids = set(first.ids)
    clash = next((i for i in second.ids if i in ids), None)
    if clash is not None:
        raise DataError(
            f"The id {clash!r} is in both {first.source} and {second.source}; calibration ids must be unique."
        )
    return MembershipDataset(first.samples + second.samples, f"{first.source} + {second.source}")
