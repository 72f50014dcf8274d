"""Fine-tuning risk comparison: one scenario per value of a knob (epochs, method, lr, ...), each audited,
with one report of how attack AUROC and TPR at 1% FPR grow with training exposure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from miakit.errors import MiakitError

__all__ = ["SWEEPABLE", "parse_sweep", "run_sweep", "sweep_png"]

# Knob name on the command line -> (keyword of build_finetune_scenario, value type).
SWEEPABLE: dict[str, tuple[str, type]] = {
    "epochs": ("epochs", int),
    "method": ("method", str),
    "lr": ("lr", float),
    "members": ("n_members", int),
    "seed": ("seed", int),
    "max_length": ("max_length", int),
}
PLOTTED = ("auroc", "tpr_at_1pct_fpr")


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """``"epochs=1,2,4"`` -> ("epochs", [1, 2, 4]); errors name what is allowed."""
    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in SWEEPABLE:
        raise MiakitError(f"--sweep takes KNOB=V1,V2,... with KNOB one of {', '.join(SWEEPABLE)}; got {text!r}.")
    kind = SWEEPABLE[key][1]
    try:
        values = [kind(v.strip()) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise MiakitError(f"--sweep {key} takes {kind.__name__} values; got {raw!r}.") from None
    if len(values) < 2 or len(set(values)) != len(values):
        raise MiakitError(f"--sweep {key} needs at least two distinct values; got {raw!r}.")
    return key, values


def sweep_png(table: pd.DataFrame, key: str) -> bytes:
    """AUROC and TPR@1%FPR of each attack against the swept value (categorical x axis, in sweep order)."""
    from matplotlib.figure import Figure

    from miakit.report.plots import _png, plot_label

    values = list(dict.fromkeys(table["value"]))
    fig = Figure(figsize=(11, 4.2), dpi=110)
    axes = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    for i, (attack, rows) in enumerate(table.groupby("attack", sort=False)):
        rows = rows.set_index("value").reindex(values)
        for ax, metric in zip(axes, PLOTTED, strict=True):
            ax.plot(
                range(len(values)),
                rows[metric].to_numpy(dtype=float),
                marker="o",
                linestyle=styles[(i // 10) % len(styles)],
                label=plot_label(attack),
            )
    for ax, metric, title in zip(axes, PLOTTED, ("AUROC", "TPR at 1% FPR"), strict=True):
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(key)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if metric == "auroc":
            ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return _png(fig)


def _metric(results: dict[str, Any], attack: str, metric: str) -> float | None:
    value = results["attacks"].get(attack, {}).get(metric)
    return value.get("value") if isinstance(value, dict) else None


def run_sweep(
    out: Path | str,
    key: str,
    values: Sequence[Any],
    options: dict[str, Any],
    *,
    attacks: str = "all",
    console: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Build (or reuse) ``out/<key>=<value>/`` for each value, audit each, and write ``sweep.json``,
    ``sweep.csv``, ``sweep.png`` and ``sweep.html`` into ``out``; returns the sweep record."""
    from miakit.api import audit
    from miakit.report.html import _environment, data_uri
    from miakit.scenarios.finetune import build_finetune_scenario
    from miakit.scenarios.layout import SCENARIO_FILE

    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    keyword = SWEEPABLE[key][0]
    rows: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for value in values:
        directory = out / f"{key}={value}"
        if not (directory / SCENARIO_FILE).is_file():  # an interrupted sweep resumes where it stopped
            if console is not None:
                from rich.text import Text

                console.print(Text.assemble(("sweep", "bold"), f" {key}={value}: building the scenario in {directory}"))
            build_finetune_scenario(directory, **{**options, keyword: value})
        result = audit(scenario=str(directory), attacks=attacks, out=str(directory / "audit"), progress=progress)
        points.append(
            {
                "value": value,
                "scenario": str(directory),
                "run_dir": str(result.run_dir),
                "canaries": result.results.get("canaries", []),
            }
        )
        for attack in result.results["attacks"]:
            rows.append({"value": value, "attack": attack, **{m: _metric(result.results, attack, m) for m in PLOTTED}})
    table = pd.DataFrame(rows, columns=["value", "attack", *PLOTTED])
    table.to_csv(out / "sweep.csv", index=False)
    png = sweep_png(table, key)
    (out / "sweep.png").write_bytes(png)
    record = {"key": key, "values": list(values), "options": _plain(options), "points": points, "rows": rows}
    (out / "sweep.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    wide = table.pivot(index="attack", columns="value", values="auroc").reindex(columns=list(values))
    wide_tpr = table.pivot(index="attack", columns="value", values="tpr_at_1pct_fpr").reindex(columns=list(values))
    html = (
        _environment()
        .get_template("sweep.html.j2")
        .render(
            key=key,
            values=list(values),
            attacks=list(wide.index),
            auroc=wide.to_dict(orient="index"),
            tpr=wide_tpr.to_dict(orient="index"),
            points=points,
            options=_plain(options),
            figure=data_uri(png),
        )
    )
    (out / "sweep.html").write_text(html, encoding="utf-8")
    record["report"] = str(out / "sweep.html")
    if console is not None:
        from rich.table import Table
        from rich.text import Text

        shown = Table(title=f"AUROC by {key} (TPR at 1% FPR in brackets)", title_justify="left")
        shown.add_column("attack")
        for value in values:
            shown.add_column(f"{key}={value}", justify="right")
        for attack in wide.index:
            cells = [f"{_fmt(wide.loc[attack, v])} ({_fmt(wide_tpr.loc[attack, v])})" for v in values]
            shown.add_row(Text(str(attack)), *cells)
        console.print(shown)
    return record


def _fmt(value: Any) -> str:
    """A metric for the console: 3 decimals, or n/e when not estimable (e.g. TPR at 1% FPR with < 100 negatives)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/e"
    return "n/e" if number != number else f"{number:.3f}"


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v

    return {k: plain(v) for k, v in options.items() if k != "progress"}
