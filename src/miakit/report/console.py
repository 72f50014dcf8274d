"""The console summary of a run: one rich table sorted by AUROC, then warnings and skipped attacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from miakit.report.files import order_warnings
from miakit.report.format import METRIC_COLUMNS, format_metric, sorted_attack_names


def results_table(results: Mapping[str, Any]) -> Table:
    """A rich Table of every attack's metrics (AUROC with its CI), best AUROC first."""
    table = Table(title="membership inference results", title_justify="left")
    table.add_column("attack", no_wrap=True)
    for key, label in METRIC_COLUMNS:
        table.add_column("AUROC [CI]" if key == "auroc" else label, justify="right", no_wrap=True)
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
    """Exposure of each inserted canary (bits; the maximum is log2 of the number of candidates)."""
    table = Table(title="canary exposure (Carlini et al. 2019)", title_justify="left")
    for column in ("canary", "inserted", "rank", "N", "exposure (bits)", "max"):
        table.add_column(column, justify="left" if column == "canary" else "right")
    for c in canaries:
        table.add_row(
            str(c["id"]),
            str(c["repeats"]),
            str(c["rank"]),
            str(c["n_candidates"]),
            f"{c['exposure']:.2f}",
            f"{c['max_exposure']:.2f}",
        )
    return table


def print_results(results: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the results table, then warnings in yellow and skipped attacks with their reasons."""
    console = console or Console()
    console.print(results_table(results))
    for warning in order_warnings(results.get("warnings", [])):
        console.print(Text(f"warning: {warning}", style="bold yellow"))
    epsilon = results.get("epsilon")
    if epsilon:
        console.print(
            Text(
                f"empirical privacy: {epsilon['attack']} implies epsilon >= {epsilon['epsilon_lower_bound']:.2f} "
                f"(delta = {epsilon['delta']}, {100 * epsilon['confidence']:.0f}% Clopper-Pearson, FPR <= "
                f"{epsilon['fpr_budget']}); assumptions in the report"
            )
        )
    calibration = results.get("calibration")
    if calibration:
        removed = calibration.get("removed_from_scoring") or 0
        console.print(
            Text(
                f"calibration: {calibration.get('source')} ({calibration.get('n_members')} members, "
                f"{calibration.get('n_nonmembers')} non-members), never scored"
                + (f"; {removed} overlapping sample(s) removed from scoring" if removed else "")
            )
        )
        for name, what in (calibration.get("fitted") or {}).items():
            console.print(Text(f"  {name}: fitted on {what}"))
    canaries = results.get("canaries", [])
    if canaries:
        console.print(canary_table(canaries))
    skipped = results.get("skipped", {})
    if skipped:
        console.print(Text("skipped:", style="bold"))
        for name, reason in sorted(skipped.items()):
            console.print(Text(f"  {name}: {reason}"))
