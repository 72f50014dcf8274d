"""Shared presentation of results.json: column order, number formats and sorting (console and HTML)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

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
