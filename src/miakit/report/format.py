"""Shared presentation of results.json: column order, number formats and sorting (console and HTML)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from miakit.evaluate.blind_verdict import blind_figures, verdict_line

METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("auroc", "AUROC"),
    ("tpr_at_0.1pct_fpr", "TPR@0.1%FPR"),
    ("tpr_at_1pct_fpr", "TPR@1%FPR"),
    ("tpr_at_5pct_fpr", "TPR@5%FPR"),
    ("fpr_at_95pct_tpr", "FPR@95%TPR"),
    ("balanced_accuracy", "bal. acc."),
)
_RATES = {"tpr_at_0.1pct_fpr", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr", "fpr_at_95pct_tpr"}
NOT_ESTIMABLE = "n/e"


def format_number(key: str, value: float | None) -> str:
    """Rates as percentages (1 decimal), AUROC and balanced accuracy with 3 decimals; None as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1%}" if key in _RATES else f"{value:.3f}"


def format_metric(key: str, metric: Mapping[str, Any] | None) -> tuple[str, str]:
    """(value text, CI text) of one results.json metric entry; 'n/e' when not estimable."""
    if not metric:
        return "-", ""
    if not metric.get("estimable", True) or metric.get("value") is None:
        return NOT_ESTIMABLE, ""
    ci = ""
    if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
        ci = f"[{format_number(key, metric['ci_low'])}, {format_number(key, metric['ci_high'])}]"
    return format_number(key, metric["value"]), ci


def sorted_attack_names(results: Mapping[str, Any]) -> list[str]:
    """Attack names by AUROC, best first; attacks without an AUROC last, then by name."""

    def key(name: str) -> tuple[bool, float, str]:
        value = (results["attacks"][name].get("auroc") or {}).get("value")
        return (value is None, -(value or 0.0), name)

    return sorted(results.get("attacks", {}), key=key)


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings as (dotted key, text) rows; lists and scalars as compact JSON text."""
    if isinstance(obj, Mapping) and obj:
        rows: list[tuple[str, str]] = []
        for k, v in obj.items():
            rows.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return rows
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, default=str)
    return [(prefix, text)]


def format_p(value: float | None) -> str:
    """A p-value with 3 significant digits; '-' when not computed."""
    return "-" if value is None else f"{value:.3g}"


def epsilon_is_zero(epsilon: Mapping[str, Any]) -> bool:
    """Whether the bound rounds to 0.00: it then proves nothing, and is not printed as a figure."""
    value = epsilon.get("epsilon_lower_bound")
    return isinstance(value, (int, float)) and value < 0.005


def epsilon_text(epsilon: Mapping[str, Any]) -> str:
    """One line on the epsilon bound: its value and terms, that it is withheld and why, or (a bound of 0) that
    these samples show no leakage, without a figure that reads as one."""
    if epsilon.get("withheld"):
        return f"empirical privacy: no epsilon bound for {epsilon['attack']}. {epsilon['reason']}"
    trials = "documents" if str(epsilon.get("trials", "")).startswith("documents") else "samples"
    if epsilon_is_zero(epsilon):
        return (
            f"empirical privacy: no evidence of leakage at this sample size ({epsilon['attack']} at FPR <= "
            f"{epsilon['fpr_budget']}, {epsilon['n_members']} + {epsilon['n_nonmembers']} {trials}: its "
            "Clopper-Pearson bounds imply no epsilon above 0)"
        )
    return (
        f"empirical privacy: {epsilon['attack']} implies epsilon >= {epsilon['epsilon_lower_bound']:.2f} "
        f"(delta = {epsilon['delta']}, {100 * epsilon['confidence']:.0f}% Clopper-Pearson, FPR <= "
        f"{epsilon['fpr_budget']}, {epsilon['n_members']} + {epsilon['n_nonmembers']} {trials} as trials); "
        "assumptions in the report"
    )


def selection_text(selection: Mapping[str, Any] | None) -> str | None:
    """The headline attack and, when it was picked among several on the same data, why that flatters it."""
    if not selection or not selection.get("optimistic"):
        return None
    return f"selected: {selection['note']}"


def resampling_text(resampling: Mapping[str, Any] | None) -> str | None:
    """What the intervals resampled, when it is documents rather than samples."""
    if not resampling or resampling.get("unit") != "document":
        return None
    return (
        f"intervals: {resampling['note']}; {resampling['n_member_documents']} member and "
        f"{resampling['n_nonmember_documents']} non-member documents"
    )


def dropped_chunks_text(dropped: Mapping[str, Any] | None) -> str:
    """NaN chunks left out of one attack's document statistics: how many, in how many documents."""
    if not dropped or not dropped.get("chunks"):
        text = "none"
    else:
        text = f"{dropped['chunks']} in {dropped['documents']} document(s)"
        if dropped.get("unscorable_documents"):
            text += f", {dropped['unscorable_documents']} with none scored"
    if dropped and dropped.get("reference_chunks"):
        text += f"; {dropped['reference_chunks']} of the reference"
    return text


def blind_verdict_text(results: Mapping[str, Any]) -> str | None:
    """The one-line verdict of the blind check (``evaluate.blind_verdict.verdict_line``) from results.json's
    blind baseline columns; None when the run has none."""
    return verdict_line(blind_figures(results.get("attacks") or {}))


def unranked_notes(results: Mapping[str, Any]) -> list[str]:
    """'<column>: not ranked: every score is -inf: ...' for each column whose scores are all equal: its
    metrics are not estimable and it sorts last, so that a tie is not read as an AUROC of 0.500."""
    details = results.get("details") or {}
    return [
        f"{name}: not ranked: {details[name]['unranked']}"
        for name in sorted_attack_names(results)
        if (details.get(name) or {}).get("unranked")
    ]


def calibration_lines(calibration: Mapping[str, Any] | None) -> list[str]:
    """The calibration set (source, members, non-members, overlap removed from scoring) and, per attack fitted
    on it, what it took from that set."""
    if not calibration:
        return []
    n_members, n_nonmembers = calibration.get("n_members"), calibration.get("n_nonmembers")
    removed = calibration.get("removed_from_scoring") or 0
    lines = [
        f"calibration set: {calibration.get('source')} ({n_members} members, {n_nonmembers} non-members), "
        "never scored" + (f"; {removed} overlapping sample(s) removed from scoring" if removed else "")
    ]
    size = (n_members or 0) + (n_nonmembers or 0)
    for name, what in (calibration.get("fitted") or {}).items():
        lines.append(f"  {name}: fitted on the calibration set ({size} samples): {what}")
    return lines
