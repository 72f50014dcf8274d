"""Dataset inference as a run (``miakit infer-dataset``): the same stages as an audit, features instead of
metrics. Suspect texts are labelled 1 and validation texts 0 only to route them through the planner and runner;
the test is ``miakit.evaluate.dataset_inference.infer``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from miakit.data import Sample
from miakit.errors import MiakitError


def read_texts(suspect: str, validation: str, text_column: str = "text") -> tuple[list[str], list[str]]:
    """Distinct suspect texts and the distinct validation texts not among them; too few is an error, raised
    before any model loads."""
    from miakit.data.corpus import read_corpus_texts

    suspect_texts = list(dict.fromkeys(read_corpus_texts(suspect, text_column)))
    seen = set(suspect_texts)
    validation_texts = [t for t in dict.fromkeys(read_corpus_texts(validation, text_column)) if t not in seen]
    if len(suspect_texts) < 8 or len(validation_texts) < 16:
        raise MiakitError(
            f"Dataset inference needs at least 8 suspect texts and 16 validation texts (half of them for the "
            f"false-positive run), all distinct and none in both; got {len(suspect_texts)} suspect and "
            f"{len(validation_texts)} validation texts."
        )
    return suspect_texts, validation_texts


def run_dataset_inference(
    spec: Any, built: Any = None, *, store: Any = "default", console: Any = None, write: bool = True
) -> dict[str, Any]:
    """Features from the planned attacks (engine and store), the test, the false-positive run, the files."""
    from miakit.evaluate.dataset_inference import imputed_table, infer, suspect_shift, validation_vs_itself
    from miakit.run.planner import plan_attacks
    from miakit.run.runner import score_attacks
    from miakit.run.targets import make_target, open_engine, open_store
    from miakit.run.writer import check_out, clear_previous_run, manifest_head, manifest_provenance

    started = time.perf_counter()
    run_dir = check_out(spec.out, "-dataset") if write else None
    suspect_texts, validation_texts = read_texts(spec.suspect, spec.validation, spec.text_column)
    samples = [Sample(f"s{i}", t, 1) for i, t in enumerate(suspect_texts)]
    samples += [Sample(f"v{i}", t, 0) for i, t in enumerate(validation_texts)]
    target = make_target(built if built is not None else spec.model, spec)
    plan = plan_attacks(spec.attacks, spec.reference, frozenset(target.capabilities))
    if not plan.attacks:
        raise MiakitError("No feature attack can run: " + "; ".join(f"{k}: {v}" for k, v in plan.skipped.items()))
    engine, _ = open_engine(spec, target, plan.models(), open_store(store, spec))
    features = np.column_stack(list(score_attacks(engine, plan.attacks, samples).values()))
    n_s = len(suspect_texts)
    result = infer(features[:n_s], features[n_s:], seed=spec.seed)
    false_positive = validation_vs_itself(features[n_s:], seed=spec.seed + 1)
    # suspect and validation must differ only in training: the blind baselines check that they do not otherwise
    shift = suspect_shift(suspect_texts, validation_texts, seed=spec.seed, n_bootstrap=spec.bootstrap)
    results: dict[str, Any] = {
        "p_value": result["p_value"],
        "false_positive_p_value": false_positive["p_value"],
        "alpha": spec.alpha,
        "significant": result["p_value"] < spec.alpha,
        "false_positive_significant": false_positive["p_value"] < spec.alpha,
        "curve": result["curve"],
        "false_positive_curve": false_positive["curve"],
        "n_suspect": n_s,
        "n_validation": len(validation_texts),
        "features": list(plan.attacks),
        "skipped": plan.skipped,
        "details": {"suspect_vs_validation": result, "validation_vs_itself": false_positive},
        "shift": shift,
        "imputed": imputed_table(list(plan.attacks), result),
        "warnings": [shift["warning"]] if shift["warning"] else [],
    }
    manifest = {
        **manifest_head("dataset inference"),
        "config": spec.model_dump(),
        "model": target.describe(),
        "suspect": spec.suspect,
        "validation": spec.validation,
        "counts": engine.counts.as_dict(),
        "timings_s": {"total": round(time.perf_counter() - started, 3)},
        **manifest_provenance(),
    }
    if run_dir is not None:
        from miakit.report.dataset import write_dataset_inference

        results["run_dir"] = str(run_dir)
        clear_previous_run(run_dir)
        write_dataset_inference(Path(run_dir), results, manifest)
    if console is not None:
        from rich.text import Text

        for line in (shift["warning"], shift.get("note")):
            if line:
                console.print(Text(f"warning: {line}", style="bold yellow"))
        verdict = "trained on" if results["significant"] else "no evidence it was trained on"
        console.print(
            f"Dataset inference: p = {results['p_value']:.3g} ({verdict} at alpha {spec.alpha}); false-positive "
            f"run (validation against itself): p = {results['false_positive_p_value']:.3g}. {n_s} suspect and "
            f"{len(validation_texts)} validation texts, {len(plan.attacks)} features."
        )
    return results
