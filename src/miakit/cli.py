"""The ``miakit`` command line: audit, attacks, report.

User errors print one paragraph and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from miakit.errors import MiakitError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="miakit: membership inference attacks on large models, with honest metrics.",
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, files) gets a table-wide console instead of rich's 80-column default.
console = Console(stderr=False, width=None if sys.stdout.isatty() else 130)
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug or bool(os.environ.get("MIAKIT_DEBUG"))


@app.command()
def audit(
    config: Annotated[Path | None, typer.Argument(help="YAML file with the same options (flags override it).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Target: local model dir or hub id.")] = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Labelled samples: JSONL, CSV, Parquet, HF dir.")
    ] = None,
    members: Annotated[str | None, typer.Option(help="File of member texts (with --nonmembers).")] = None,
    nonmembers: Annotated[str | None, typer.Option(help="File of non-member texts (with --members).")] = None,
    reference: Annotated[
        list[str] | None, typer.Option("--reference", "-r", help="Reference model (repeatable).")
    ] = None,
    attacks: Annotated[
        str | None,
        typer.Option("--attacks", "-a", help="Comma-separated specs, e.g. loss,min_k[k=0.1,0.2]; 'all'."),
    ] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Run directory (default runs/<time>).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per forward pass (default 8).")] = None,
    dtype: Annotated[str | None, typer.Option(help="auto, float32, bfloat16 or float16.")] = None,
    device: Annotated[str | None, typer.Option(help="auto (cuda, mps, cpu), or a torch device.")] = None,
    max_samples: Annotated[int | None, typer.Option(help="Stratified random subset of this size.")] = None,
    prepend_bos: Annotated[
        bool | None,
        typer.Option("--prepend-bos/--no-prepend-bos", help="Prepend BOS so every token is scored."),
    ] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag or commit).")] = None,
    trust_remote_code: Annotated[
        bool | None, typer.Option("--trust-remote-code", help="Run model code from the hub.")
    ] = None,
    reference_corpus: Annotated[str | None, typer.Option(help="Corpus for DC-PDD token frequencies.")] = None,
    bootstrap: Annotated[int | None, typer.Option(help="Bootstrap resamples for CIs (default 1000).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for subsets, bootstrap, baseline.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the store.")] = False,
) -> None:
    """Score every sample with every applicable attack and report honest metrics."""
    from miakit.api import audit as run_audit
    from miakit.config import load_config_file

    values: dict[str, Any] = load_config_file(config) if config else {}
    flags = {
        "model": model,
        "data": data,
        "members": members,
        "nonmembers": nonmembers,
        "reference": reference or None,
        "attacks": attacks,
        "out": out,
        "batch_size": batch_size,
        "dtype": dtype,
        "device": device,
        "max_samples": max_samples,
        "prepend_bos": prepend_bos,
        "revision": revision,
        "trust_remote_code": trust_remote_code,
        "reference_corpus": reference_corpus,
        "bootstrap": bootstrap,
        "seed": seed,
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    if not values.get("model"):
        raise MiakitError("No target model given: pass --model (a local directory or a hub id) or a config file.")
    extra = {"store": None} if no_cache else {}
    result = run_audit(config=values, console=console, **extra)
    console.print(f"\nRun directory: {result.run_dir}")
    console.print(f"Report: {result.report_path}")


@app.command("attacks")
def list_attacks() -> None:
    """List every registered attack with its family, required access, stages and paper."""
    from rich.table import Table

    from miakit.attacks import ATTACKS

    table = Table(title="miakit attacks (higher score = more likely member)")
    for column in ("name", "family", "access", "stages", "score", "paper"):
        table.add_column(column, overflow="fold")
    for name in sorted(ATTACKS):
        cls = ATTACKS[name]
        table.add_row(
            name,
            cls.family,
            ", ".join(sorted(c.value for c in cls.requires)),
            ", ".join(cls.stages),
            cls.summary,
            cls.paper,
        )
    console.print(table)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by 'miakit audit'.")],
) -> None:
    """Re-render roc.png and report.html of a run directory and print its metrics."""
    from miakit.report import print_results, read_run, render_run

    path = render_run(run_dir)
    results, _, _ = read_run(run_dir)
    print_results(results, console)
    console.print(f"\nReport: {path}")


@app.command()
def demo(
    out: Annotated[str, typer.Option("--out", "-o", help="Run directory.")] = "runs/demo",
    epochs: Annotated[int, typer.Option(help="Training epochs of the target.")] = 4,
    members: Annotated[int, typer.Option(help="Number of member (and non-member) passages.")] = 200,
) -> None:
    """Train a model on known members of the bundled corpus and audit it with every attack (offline)."""
    from miakit.demo import DemoPlan, run_demo

    plan = DemoPlan(n_members=members, n_nonmembers=members, n_reference=2 * members, epochs=epochs)
    run_demo(out, plan=plan, console=console)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors exit 2 with one paragraph, no traceback unless --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("MIAKIT_DEBUG"))
    try:
        app(args=args, standalone_mode=False)
    except MiakitError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, markup=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted; everything computed so far is in the store and will be reused.")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
