"""The evaluator stage of a run: from labels and per-sample scores to every figure results.json reports.

Metrics with intervals per attack and blind baseline, the blind warning, which attack heads the report and how
it was selected, the paired comparison with the others, the epsilon bound (or why it is withheld), and the
document-level metrics and table when samples are chunks of documents. No model, no texts: the caller scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from miakit.errors import MiakitError
from miakit.evaluate.blind_verdict import below_chance_warning, strongest_blind_warning
from miakit.evaluate.compare import paired_auroc_comparison
from miakit.evaluate.documents import METHODS, document_scores, document_table, nan_chunk_counts
from miakit.evaluate.epsilon import epsilon_lower_bound, epsilon_trials
from miakit.evaluate.metrics import AttackEvaluation, evaluate_scores
from miakit.evaluate.resample import check_one_label_per_group, is_clustered
from miakit.evaluate.scores import NAN_POLICIES

NO_LABELS = "The data has no labels: scores only, no metrics."
TOO_FEW = "Fewer than 2 members or non-members: scores only, no metrics."
FIGURE_KEYS = ("selection", "resampling", "comparison", "epsilon", "documents")


@dataclass(frozen=True)
class EvaluationSettings:
    """How a run is evaluated: bootstrap resamples, seed, NaN policy and interval level."""

    n_bootstrap: int = 1000
    seed: int = 0
    nan_policy: str = "lowest"  # "lowest" | "raise" | "omit"
    confidence: float = 0.95


@dataclass
class RunEvaluation:
    """Everything the evaluator stage found; `results_figures` gives results.json's keys beyond the table."""

    evaluations: dict[str, AttackEvaluation] = field(default_factory=dict)  # attack and blind-baseline columns
    kinds: dict[str, str] = field(default_factory=dict)  # column -> "attack" | "baseline"
    warnings: list[str] = field(default_factory=list)  # blind warning first, then the others
    comparison: dict | None = None
    epsilon: dict | None = None  # the bound, or a record saying it is withheld and why
    documents: dict | None = None  # document-level metrics (results.json "documents")
    document_table: pd.DataFrame | None = None  # documents.csv
    selection: dict | None = None  # the headline attack and how it was selected
    resampling: dict | None = None  # what the bootstrap resampled (samples or documents)

    def results_figures(self) -> dict[str, Any]:
        """The keys results.json gets besides attacks/warnings/details/skipped (those that were computed)."""
        return {key: getattr(self, key) for key in FIGURE_KEYS if getattr(self, key) is not None}


def _two_per_class(labels: np.ndarray) -> bool:
    return min(int((labels == 1).sum()), int((labels == 0).sum())) >= 2


def _check_inputs(
    labels: Any, columns: Mapping[str, Any], groups: Sequence[str] | None
) -> tuple[np.ndarray, dict[str, np.ndarray], list[str] | None]:
    y = np.asarray(labels)
    if y.ndim != 1 or not np.isin(y, (-1, 0, 1)).all():
        raise MiakitError("labels must be a 1-D array of 1 (member), 0 (non-member) or -1 (unknown)")
    y = y.astype(np.int64)
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
    for name, values in arrays.items():
        if values.shape != y.shape:
            raise MiakitError(f"column {name!r} has {len(values)} scores for {len(y)} samples")
    if groups is not None:
        if len(groups) != len(y):
            raise MiakitError(f"{len(groups)} groups for {len(y)} samples; give one document per sample")
        groups = [str(g) for g in groups]
    return y, arrays, groups


def _selection(attacks: list[str], evaluations: Mapping[str, AttackEvaluation]) -> dict[str, Any]:
    """The attack with the highest AUROC, and a note that choosing it on these data flatters its figures."""

    def auroc(column: str) -> float:
        value = evaluations[column].metrics["auroc"].value
        return -1.0 if value is None else value

    best = max(attacks, key=auroc)
    among = len(attacks)
    if among == 1:
        note = "the only attack evaluated: not selected among others"
    else:
        note = (
            f"{best} is the highest AUROC of {among} attacks on the same data its figures come from; the best of "
            f"{among} is chosen partly for its luck on these samples, so its figures (and the epsilon bound from "
            "it) are optimistic. Confirm it on fresh data, or quote the attack you chose in advance."
        )
    return {
        "attack": best,
        "among": among,
        "criterion": "highest AUROC on the evaluated data",
        "optimistic": among > 1,
        "note": note,
    }


def _resampling(labels: np.ndarray, groups: list[str] | None) -> dict[str, Any]:
    if not is_clustered(groups):
        return {
            "unit": "sample",
            "note": "stratified bootstrap: members and non-members resampled separately, with replacement",
        }
    g = np.asarray(groups)
    return {
        "unit": "document",
        "n_member_documents": len(set(g[labels == 1])),
        "n_nonmember_documents": len(set(g[labels == 0])),
        "note": (
            "chunks of one document are not independent: every interval (and the paired comparison) resamples "
            "whole documents with all their chunks, members' and non-members' separately, and the epsilon bound "
            "counts one trial per document (its mean chunk score)"
        ),
    }


def _comparison(
    labels: np.ndarray,
    columns: dict[str, np.ndarray],
    attacks: list[str],
    best: str,
    groups: list[str] | None,
    settings: EvaluationSettings,
) -> dict | None:
    """Paired bootstrap against the best attack; under "omit", on the samples every attack scored."""
    omit = settings.nan_policy == "omit"
    rows = ~np.any([np.isnan(columns[c]) for c in attacks], axis=0) if omit else np.ones(len(labels), dtype=bool)
    if len(attacks) < 2 or settings.n_bootstrap <= 0 or not _two_per_class(labels[rows]):
        return None
    comparison = paired_auroc_comparison(
        labels[rows],
        {c: columns[c][rows] for c in attacks},
        best=best,
        n_bootstrap=settings.n_bootstrap,
        seed=settings.seed,
        confidence=settings.confidence,
        groups=None if groups is None else [g for g, keep in zip(groups, rows, strict=True) if keep],
    )
    if omit:
        comparison["n_omitted"] = int((~rows).sum())
    return comparison


def _withheld_because(blind_message: str | None, shift: str | None) -> str | None:
    reasons = []
    if blind_message:
        reasons.append(
            "a blind baseline, which never sees the model, separates members from non-members (see the first "
            "warning), so the split is not a randomised one and TPR and FPR measure the difference between the "
            "two sets as much as membership"
        )
    if shift:
        reasons.append(f"the data source declares a distribution shift between members and non-members: {shift}")
    if not reasons:
        return None
    return "Withheld: " + "; and ".join(reasons) + ". The bound is only valid on a randomised member split."


def _epsilon(
    labels: np.ndarray,
    scores: np.ndarray,
    best: str,
    among: int,
    groups: list[str] | None,
    reason: str | None,
    settings: EvaluationSettings,
) -> dict | None:
    """The bound of the best attack, counted in documents when samples are chunks; or why it is withheld."""
    trial_labels, _, record = epsilon_trials(labels, scores, groups, settings.nan_policy)
    if not _two_per_class(trial_labels):
        return None
    if reason is not None:
        return {"attack": best, "withheld": True, "reason": reason, "trials": record["trials"]}
    bound = epsilon_lower_bound(
        labels, scores, groups=groups, nan_policy=settings.nan_policy, confidence=settings.confidence
    )
    return {"attack": best, "withheld": False, "selected_among": among, **bound}


def _documents(
    labels: np.ndarray,
    columns: dict[str, np.ndarray],
    groups: list[str],
    known: Mapping[str, Any],
    settings: EvaluationSettings,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Document-level metrics of every column by each statistic, NaN chunks left out and counted."""
    reference_scores = dict(known.get("scores") or {})
    out: dict[str, Any] = {"methods": {}, "reference": {}, "dropped_chunks": {}, "nan_policy": settings.nan_policy}
    for column in columns:
        out["reference"][column] = (
            f"known non-members: {known['n_chunks']} chunks of {known['n_documents']} calibration documents"
            if column in reference_scores
            else "the other evaluated documents"
        )
    table = document_table(groups, labels, columns, reference_scores)
    for method in METHODS:
        per_attack = {}
        for column, scores in columns.items():
            ids, doc_labels, doc_scores = document_scores(
                groups, labels, scores, method, reference=reference_scores.get(column)
            )
            if not _two_per_class(doc_labels):
                note = "fewer than 2 member or non-member documents: no document-level metrics"
                return {"note": note}, table
            evaluation = evaluate_scores(
                doc_labels,
                doc_scores,
                n_bootstrap=settings.n_bootstrap,
                seed=settings.seed,
                nan_policy=settings.nan_policy,
                confidence=settings.confidence,
            )
            per_attack[column] = evaluation.to_json()
        out["methods"][method] = per_attack
    for column, scores in columns.items():
        _, n_chunks, n_nan = nan_chunk_counts(groups, scores)
        dropped = {
            "chunks": int(n_nan.sum()),
            "documents": int(np.count_nonzero(n_nan)),
            "unscorable_documents": int(np.count_nonzero(n_nan == n_chunks)),
        }
        if column in reference_scores:
            dropped["reference_chunks"] = int(np.isnan(np.asarray(reference_scores[column], dtype=float)).sum())
        out["dropped_chunks"][column] = dropped
    out["n_documents"] = len(ids)
    out["n_member_documents"] = int((doc_labels == 1).sum())
    out["chunks_per_document"] = round(len(labels) / max(1, len(ids)), 2)
    return out, table


def evaluate_run(
    labels: np.ndarray,
    columns: dict[str, np.ndarray],
    *,
    blind: dict[str, np.ndarray],
    groups: Sequence[str] | None = None,
    known: dict | None = None,
    shift: str | None = None,
    settings: EvaluationSettings = EvaluationSettings(),
) -> RunEvaluation:
    """Evaluate a scored run: ``labels`` (1 member, 0 non-member, -1 unknown), ``columns`` (attack -> scores),
    ``blind`` (blind baseline -> out-of-fold scores, evaluated like attacks as kind "baseline").

    ``groups``: the document of each sample; when one holds several samples (chunks), intervals, the paired
    comparison and the epsilon bound count documents, and document-level metrics and the document table are
    computed. ``known``: known non-member chunk scores for the document statistics (``{"scores": {column:
    array}, "n_chunks", "n_documents"}``). ``shift``: a distribution shift the data source declares; it, or a
    blind baseline that separates the classes, withholds the epsilon bound. Without labels (any -1) or with
    fewer than 2 members or non-members, only the warning saying so.
    """
    if settings.nan_policy not in NAN_POLICIES:
        raise MiakitError(f"nan_policy must be one of {', '.join(NAN_POLICIES)}; got {settings.nan_policy!r}")
    y, arrays, groups = _check_inputs(labels, {**columns, **blind}, groups)
    attacks = list(columns)
    run = RunEvaluation(kinds={**{c: "attack" for c in attacks}, **{c: "baseline" for c in blind}})
    if not len(y) or (y == -1).all():
        run.warnings.append(NO_LABELS)
        return run
    if (y == -1).any():
        n = int((y == -1).sum())
        run.warnings.append(f"{n} of {len(y)} samples have no label: scores only, no metrics.")
        return run
    if not _two_per_class(y):
        run.warnings.append(TOO_FEW)
        return run
    check_one_label_per_group(y, groups)
    for column, scores in arrays.items():
        run.evaluations[column] = evaluate_scores(
            y,
            scores,
            n_bootstrap=settings.n_bootstrap,
            seed=settings.seed,
            nan_policy=settings.nan_policy,
            confidence=settings.confidence,
            groups=groups,
        )
    blind_message = strongest_blind_warning({c: run.evaluations[c] for c in blind})
    if blind_message:
        run.warnings.insert(0, blind_message)
    else:
        below = below_chance_warning({c: run.evaluations[c] for c in blind})
        if below:
            run.warnings.insert(0, below)
    run.resampling = _resampling(y, groups)
    if attacks:
        run.selection = _selection(attacks, run.evaluations)
        best = run.selection["attack"]
        run.comparison = _comparison(y, arrays, attacks, best, groups, settings)
        reason = _withheld_because(blind_message, shift)
        run.epsilon = _epsilon(y, arrays[best], best, len(attacks), groups, reason, settings)
    if is_clustered(groups) and arrays:
        run.documents, run.document_table = _documents(y, arrays, groups, known or {}, settings)
    return run
