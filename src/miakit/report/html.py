"""Self-contained report.html: inline CSS, images as base64 data URIs, every dataset string escaped."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from miakit.evaluate import BALANCED_ACCURACY_DEFINITION, BLIND_WARNING_PREFIX
from miakit.report.files import REPORT_HTML, order_warnings, read_run, write_text
from miakit.report.format import (
    METRIC_COLUMNS,
    blind_verdict_text,
    dropped_chunks_text,
    epsilon_is_zero,
    flatten,
    format_metric,
    format_p,
    resampling_text,
    selection_text,
    sorted_attack_names,
)
from miakit.report.plots import histograms_png, layer_auroc_png, roc_png, stored_png
from miakit.report.target import target_lines

_COUNT_KEYS = ("n_members", "n_nonmembers", "nan_members", "nan_nonmembers", "inf_members", "inf_nonmembers")


def _environment() -> jinja2.Environment:
    """Jinja environment with autoescape forced on for every template (they end in .j2, not .html), and the
    shared number formats as filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("miakit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["p_value"] = format_p
    env.filters["dropped_chunks"] = dropped_chunks_text
    return env


def data_uri(png: bytes) -> str:
    """A PNG as a data: URI, so the report opens offline as one file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _title(manifest: Mapping[str, Any]) -> str:
    """The scenario's name when the run audited one (its model path is a cache folder), else the model's."""
    scenario = manifest.get("scenario")
    if isinstance(scenario, Mapping) and (scenario.get("name") or scenario.get("directory")):
        name = scenario.get("name") or f"{scenario.get('kind') or 'a'} scenario {Path(scenario['directory']).name}"
        return f"miakit report: {name}"
    model = manifest.get("model")
    if isinstance(model, Mapping):
        model = model.get("name") or model.get("id") or model.get("path")
    return f"miakit report: {model}" if model else "miakit report"


def _metric_rows(results: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Table rows sorted by AUROC, plus numbered footnotes: one per distinct (metric, note), listing its rows."""
    rows, footnotes = [], []
    numbers: dict[tuple[str, str], int] = {}
    names = sorted_attack_names(results)
    for name in names:
        metrics = results["attacks"][name]
        detail = results.get("details", {}).get(name, {})
        unranked = detail.get("unranked") or ""
        cells = []
        for key, label in METRIC_COLUMNS:
            text, ci = format_metric(key, metrics.get(key))
            note = "" if unranked else (metrics.get(key) or {}).get("note") or ""
            ref = None
            if note and (label, note) in numbers:
                ref = numbers[(label, note)]
                footnotes[ref - 1]["attacks"].append(name)
            elif note:
                ref = numbers[(label, note)] = len(footnotes) + 1
                footnotes.append({"n": ref, "attacks": [name], "metrics": [label], "note": note})
            cells.append({"text": text, "ci": ci, "note": note, "ref": ref})
        kind = detail.get("kind", "baseline" if name.startswith("blind_") else "attack")
        counts = {k: detail.get(k, "-") for k in _COUNT_KEYS}
        rows.append({"name": name, "kind": kind, "cells": cells, "counts": counts, "unranked": unranked})
    for f in footnotes:
        f["attack"] = "every row" if len(f["attacks"]) == len(names) > 1 else ", ".join(f["attacks"])
    return rows, footnotes


def _evaluation_settings(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Bootstrap and NaN settings as recorded in manifest["evaluation"], with the library defaults."""
    settings = {"n_bootstrap": 1000, "confidence": 0.95, "nan_policy": "lowest", "recorded": False}
    recorded = manifest.get("evaluation")
    if isinstance(recorded, Mapping):
        settings.update({k: recorded[k] for k in ("n_bootstrap", "confidence", "nan_policy") if k in recorded})
        settings["recorded"] = True
    return settings


def _layer_plots(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Per-layer AUROC figures of probe attacks (from their calibration details)."""
    details = (results.get("calibration") or {}).get("details") or {}
    out = []
    for name, info in details.items():
        if isinstance(info, Mapping) and info.get("layer_auroc"):
            out.append((name, data_uri(layer_auroc_png(name, list(info["layer_auroc"]), int(info["best_layer"])))))
    return out


def build_html(
    results: Mapping[str, Any], scores: Any, manifest: Mapping[str, Any], roc: bytes, *, store: Any = None
) -> str:
    """The report's HTML text from the run's contents and the ROC image (figures read from ``store`` when
    drawn before, see ``plots.stored_png``)."""
    rows, footnotes = _metric_rows(results)

    def draw_histograms() -> bytes | None:
        return histograms_png(scores)

    warnings = order_warnings(results.get("warnings", []))
    context = {
        "title": _title(manifest),
        "blind_verdict": blind_verdict_text(results),
        "epsilon_zero": bool(results.get("epsilon")) and epsilon_is_zero(results["epsilon"]),
        "manifest_rows": flatten(dict(manifest)),
        "warnings": [{"text": w, "blind": w.startswith(BLIND_WARNING_PREFIX)} for w in warnings],
        "columns": [label for _, label in METRIC_COLUMNS],
        "rows": rows,
        "footnotes": footnotes,
        "skipped": sorted(results.get("skipped", {}).items()),
        "canaries": list(results.get("canaries", [])),
        "calibration": results.get("calibration"),
        "comparison": results.get("comparison"),
        "documents": results.get("documents"),
        "epsilon": results.get("epsilon"),
        "selection": selection_text(results.get("selection")),
        "resampling": resampling_text(results.get("resampling")),
        "balanced_accuracy_definition": BALANCED_ACCURACY_DEFINITION,
        "layer_plots": _layer_plots(results),
        "roc": data_uri(roc),
        "histograms": data_uri(png) if (png := stored_png(store, "histograms", scores, draw_histograms)) else None,
        "settings": _evaluation_settings(manifest),
        "n_samples": len(scores),
        "target_lines": target_lines(results.get("target")),
    }
    return _environment().get_template("report.html.j2").render(**context)


def render_html(run_dir: str | os.PathLike, *, roc: bytes | None = None, store: Any = None) -> Path:
    """Write run_dir/report.html from the run files; the ROC is redrawn from scores unless given (or read from
    ``store`` when drawn before)."""
    run_dir = Path(run_dir)
    results, scores, manifest = read_run(run_dir)
    if roc is None:
        roc = stored_png(store, "roc", scores, lambda: roc_png(scores))
    html = build_html(results, scores, manifest, roc, store=store)
    path = run_dir / REPORT_HTML
    write_text(path, html)
    return path
