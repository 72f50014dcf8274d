"""The console summary of a run: the metrics table sorted by AUROC, warnings, audit figures, skipped attacks.

Every string that can hold user text (attack specs, ids, paths, messages) goes to rich as a ``Text``, so rich
markup in it (``[/x]``, ``[bold red]``) prints literally whatever console it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from miakit.report.files import order_warnings
from miakit.report.format import (
    METRIC_COLUMNS,
    blind_verdict_text,
    calibration_lines,
    dropped_chunks_text,
    epsilon_text,
    format_metric,
    format_p,
    resampling_text,
    selection_text,
    sorted_attack_names,
    unranked_notes,
)
from miakit.report.target import target_lines


def results_table(results: Mapping[str, Any]) -> Table:
    """A rich Table of every attack's metrics (AUROC with its CI), best AUROC first."""
    table = Table(title="membership inference results", title_justify="left")
    table.add_column("attack", no_wrap=True)
    for key, label in METRIC_COLUMNS:
        table.add_column(Text("AUROC [CI]" if key == "auroc" else label), justify="right", no_wrap=True)
    details = results.get("details", {})
    for name in sorted_attack_names(results):
        metrics = results["attacks"][name]
        cells = []
        for key, _ in METRIC_COLUMNS:
            text, ci = format_metric(key, metrics.get(key))
            cells.append(Text(f"{text} {ci}" if key == "auroc" and ci else text))
        style = "italic dim" if details.get(name, {}).get("kind") == "baseline" else None
        table.add_row(Text(name), *cells, style=style)
    return table


def canary_table(canaries: list[Mapping[str, Any]]) -> Table:
    """Exposure of each inserted canary in bits: exact (at most log2 of the number of candidates) and extrapolated
    from a skew-normal fit (at most log2 of the number of possible secrets); notes in the caption."""
    table = Table(title="canary exposure (Carlini et al. 2019)", title_justify="left")
    for column in ("canary", "inserted", "rank", "N", "exposure (bits)", "max", "extrapolated (bits)"):
        table.add_column(column, justify="left" if column == "canary" else "right")
    for c in canaries:
        extrapolated = c.get("extrapolated_exposure")
        table.add_row(
            Text(str(c["id"])),
            str(c["repeats"]),
            str(c["rank"]),
            str(c["n_candidates"]),
            f"{c['exposure']:.2f}",
            f"{c['max_exposure']:.2f}",
            "-" if extrapolated is None else f"{extrapolated:.2f}",
        )
    notes = [f"{c['id']}: {c['note']}" for c in canaries if c.get("note")]
    if notes:
        table.caption = Text("; ".join(notes))
        table.caption_justify = "left"
    return table


def comparison_table(comparison: Mapping[str, Any]) -> Table:
    """AUROC(best) - AUROC(attack) per attack with its interval, raw and Holm-adjusted p-values."""
    best = comparison["best"]
    table = Table(title=Text(f"attacks compared with {best} (paired bootstrap)"), title_justify="left")
    for column in ("attack", f"AUROC({best}) - AUROC", "interval", "p (raw)", "p (Holm)"):
        table.add_column(Text(column), justify="left" if column == "attack" else "right", no_wrap=column == "attack")
    for name, pair in comparison["pairs"].items():
        interval = "-" if pair["ci_low"] is None else f"[{pair['ci_low']:.3f}, {pair['ci_high']:.3f}]"
        table.add_row(
            Text(name),
            f"{pair['auroc_difference']:.3f}",
            interval,
            format_p(pair["p_value"]),
            format_p(pair.get("p_value_holm")),
        )
    table.caption = Text(comparison.get("adjustment", ""))
    table.caption_justify = "left"
    return table


def documents_table(documents: Mapping[str, Any]) -> Table:
    """Document-level AUROC [CI] per attack and statistic, and the NaN chunks each attack left out."""
    title = f"documents ({documents['n_documents']}, {documents['n_member_documents']} members)"
    table = Table(title=title, title_justify="left")
    table.add_column("attack", no_wrap=True)
    methods = list(documents["methods"])
    for method in methods:
        table.add_column(Text(f"{method} AUROC [CI]"), justify="right", no_wrap=True)
    table.add_column("NaN chunks left out", justify="right")
    dropped = documents.get("dropped_chunks", {})
    for name in documents["methods"][methods[0]]:
        cells = []
        for method in methods:
            text, ci = format_metric("auroc", documents["methods"][method][name].get("auroc"))
            cells.append(f"{text} {ci}".strip())
        table.add_row(Text(name), *cells, dropped_chunks_text(dropped.get(name)))
    return table


BALANCED_ACCURACY_NOTE = (
    "bal. acc.: at a threshold chosen on the other folds (out of fold, so about 0.5 without signal); "
    "definition in the report"
)


def print_results(results: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the results table and how to read it, warnings in yellow, the selection note, the comparison and
    documents tables, the epsilon bound (or why it is withheld), then calibration, canaries and skipped attacks."""
    console = console or Console(markup=False)
    verdict = blind_verdict_text(results)
    if verdict:
        console.print(Text(verdict, style="bold red" if "not evidence" in verdict else "bold"))
    console.print(results_table(results))
    for line in target_lines(results.get("target")):
        console.print(Text(line, style="dim"))
    for note in unranked_notes(results):
        console.print(Text(note, style="yellow"))
    if results.get("attacks"):
        console.print(Text(BALANCED_ACCURACY_NOTE, style="dim"))
    resampling = resampling_text(results.get("resampling"))
    if resampling:
        console.print(Text(resampling, style="dim"))
    for warning in order_warnings(results.get("warnings", [])):
        console.print(Text(f"warning: {warning}", style="bold yellow"))
    selection = selection_text(results.get("selection"))
    if selection:
        console.print(Text(selection, style="yellow"))
    comparison = results.get("comparison")
    if comparison and comparison.get("pairs"):
        console.print(comparison_table(comparison))
    documents = results.get("documents")
    if documents and documents.get("methods"):
        console.print(documents_table(documents))
    elif documents and documents.get("note"):
        console.print(Text(f"documents: {documents['note']}"))
    epsilon = results.get("epsilon")
    if epsilon:
        console.print(Text(epsilon_text(epsilon), style="bold yellow" if epsilon.get("withheld") else None))
    for line in calibration_lines(results.get("calibration")):
        console.print(Text(line))
    canaries = results.get("canaries", [])
    if canaries:
        console.print(canary_table(canaries))
    skipped = results.get("skipped", {})
    if skipped:
        console.print(Text("skipped:", style="bold"))
        for name, reason in sorted(skipped.items()):
            console.print(Text(f"  {name}: {reason}"))
