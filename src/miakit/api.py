"""The Python API: ``audit``, ``blind`` and ``infer_dataset``, each a short composition of the run stages.

spec (``run/spec.py``) -> data (``run/data.py``) -> plan (``run/planner.py``) -> run (``run/runner.py``) ->
evaluate (``evaluate/evaluation.py``) -> write (``run/writer.py``). Nothing here knows about a particular attack.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from miakit.errors import MiakitError
from miakit.run.spec import DATASET_FEATURES, BlindSpec, DatasetInferenceSpec, RunSpec, apply_scenario, make_spec
from miakit.run.writer import AuditResult, check_out, finish_run

__all__ = ["DATASET_FEATURES", "AuditResult", "audit", "blind", "infer_dataset"]


class _Timings(dict):
    """Seconds per stage, for the manifest."""

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[name] = round(self.get(name, 0.0) + time.perf_counter() - t0, 3)


def _audit_spec(model: Any, data: Any, config: Any, options: dict[str, Any]) -> tuple[RunSpec, dict | None]:
    """The run specification from a config (dict or RunSpec), keyword options and the positional arguments."""
    values = config.model_dump() if isinstance(config, RunSpec) else dict(config or {})
    values.update({k: v for k, v in options.items() if v is not None})
    if isinstance(model, (str, Path)):
        values["model"] = str(model)
    elif model is not None:
        values["model"] = getattr(model, "name", None) or "in-memory"
    if isinstance(data, (str, Path)):
        values["data"] = str(data)
    elif data is not None:
        values["data"] = "python"
    scenario = apply_scenario(values)
    return make_spec(RunSpec, values), scenario


def audit(
    model: Any = None,
    data: Any = None,
    *,
    config: RunSpec | dict[str, Any] | None = None,
    console: Any = None,
    store: Any = "default",
    write: bool = True,
    **options: Any,
) -> AuditResult:
    """Run every requested attack on ``model`` over ``data`` and evaluate them.

    ``model``: a local directory or hub id, or a built target (``HFCausalLM.from_model``); ``data``: a file path,
    a ``MembershipDataset``, a list of ``Sample``, a pandas DataFrame or a list of dicts (the fields of a data
    file: ``text``, ``label``, optionally ``id``, ``group``; ``text_column``, ``label_column`` and ``label_map``
    apply). The run folder (``out``) is checked before any work. The other keywords are the fields of
    ``miakit.run.spec.RunSpec``, the same as the ``miakit audit`` flags and YAML keys (``reference``, ``attacks``,
    ``out``, ``batch_size``, ``nan_policy``, ...). ``store``: a ``Store``, None (no store) or the default one.
    """
    started = time.perf_counter()
    timings = _Timings()
    spec, scenario = _audit_spec(model, data, config, options)
    out = str(check_out(spec.out)) if write else None
    from miakit.evaluate.evaluation import EvaluationSettings, evaluate_run
    from miakit.report.target import target_summary
    from miakit.run.baselines import BlindScores
    from miakit.run.data import prepare_data
    from miakit.run.planner import check_attack_specs, plan_attacks
    from miakit.run.runner import run_attacks
    from miakit.run.targets import make_target, open_engine, open_store, target_warnings
    from miakit.run.writer import audit_manifest, audit_results

    check_attack_specs(spec.attacks)
    with timings.stage("load_data"):
        run_data = prepare_data(spec, None if isinstance(data, (str, Path)) else data)
    with timings.stage("load_models"):
        target = make_target(model if model is not None and not isinstance(model, (str, Path)) else spec.model, spec)
    calibration = run_data.calibration.samples if run_data.calibration is not None else False
    plan = plan_attacks(spec.attacks, spec.reference, frozenset(target.capabilities), calibration=calibration)
    if not plan.attacks:
        raise MiakitError("No attack can run: " + "; ".join(f"{k}: {v}" for k, v in plan.skipped.items()))
    engine, references = open_engine(spec, target, plan.models(), open_store(store, spec))
    # the blind baselines need no model: on an accelerator they run on the CPU cores while the signals compute
    baselines = BlindScores(run_data.evaluation, spec.seed, engine.store, progress=spec.progress)
    baselines.start(concurrent=_cores_free(target))
    scored = run_attacks(engine, plan, run_data, spec, timings=timings)
    with timings.stage("evaluation"):
        blind = baselines.result()
        evaluation = evaluate_run(
            scored.labels,
            scored.columns,
            blind=blind,
            groups=[s.document for s in run_data.evaluation.samples],
            known=scored.known,
            shift=run_data.evaluation.shift,
            settings=EvaluationSettings(n_bootstrap=spec.bootstrap, seed=spec.seed, nan_policy=spec.nan_policy),
        )
    timings["total"] = round(time.perf_counter() - started, 3)
    results, scores = audit_results(run_data, plan, scored, evaluation, blind)
    results["target"] = target_summary(target.describe())
    results["warnings"] = [*results["warnings"], *target_warnings(target)]
    manifest = audit_manifest(spec, run_data, plan, scored, engine, target, references, scenario, dict(timings))
    tables = {"documents": evaluation.document_table} if evaluation.document_table is not None else {}
    return finish_run(
        results, scores, manifest, out=out, write=write, console=console, tables=tables, store=engine.store
    )


def _cores_free(target: Any) -> bool:
    """Whether the target computes off the CPU (its cores are then free for the blind baselines)."""
    return str(getattr(target, "device", "cpu")).split(":")[0] not in ("cpu", "")


def blind(data: Any = None, *, write: bool = True, console: Any = None, **options: Any) -> AuditResult:
    """Only the model-free blind baselines on labelled data (``miakit blind``): does the split itself leak?

    ``data`` (a path, a ``MembershipDataset``, a list of ``Sample``, a DataFrame or a list of dicts) or the keywords of
    ``miakit.run.spec.BlindSpec`` (``members``/``nonmembers``, ``benchmark`` with ``benchmark_path``, ``out``,
    ``bootstrap``, ``seed``, ...). Writes the same run files as an audit with the columns ``blind_bow``,
    ``blind_date`` and ``blind_ngram``.
    """
    from miakit.run.data import load_samples
    from miakit.run.writer import blind_manifest, blind_results

    started = time.perf_counter()
    values = {k: v for k, v in options.items() if v is not None}
    if isinstance(data, (str, Path)):
        values["data"] = str(data)
    if data is not None and not isinstance(data, (str, Path)):
        if values.get("benchmark") or values.get("data") or values.get("members"):
            raise MiakitError("Give either data in Python or a data source option, not both.")
        values["data"] = "python"
    spec = make_spec(BlindSpec, values)
    out = str(check_out(spec.out, "-blind")) if write else None
    dataset = load_samples(spec, None if isinstance(data, (str, Path)) else data)
    results, scores, labels = blind_results(dataset, spec)
    manifest = blind_manifest(spec, dataset, labels, time.perf_counter() - started)
    return finish_run(results, scores, manifest, out=out, suffix="-blind", write=write, console=console)


def infer_dataset(
    model: Any = None,
    suspect: str | Path | None = None,
    validation: str | Path | None = None,
    *,
    store: Any = "default",
    console: Any = None,
    write: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Dataset inference (Maini et al. 2024): is the suspect set, as a whole, in the training data?

    ``suspect`` and ``validation`` are text files (.txt, .jsonl, .csv, .parquet); the validation texts must be
    of the same distribution and known not to be trained on. Other keywords: the fields of
    ``miakit.run.spec.DatasetInferenceSpec`` (``attacks``, ``reference``, ``alpha``, ``seed``, ``out``, ...).
    Every attack gives one feature per text, through the engine and store; a false-positive run splits the
    validation set against itself and the blind baselines check suspect against validation for a distribution
    shift. Returns the results dict (also ``results.json`` in the run directory).
    """
    from miakit.run.dataset import run_dataset_inference

    values = {k: v for k, v in options.items() if v is not None}
    for key, value in (("model", model), ("suspect", suspect), ("validation", validation)):
        if isinstance(value, (str, Path)):
            values[key] = str(value)
        elif value is not None:
            values[key] = getattr(value, "name", None) or "in-memory"
    if values.get("reference") and "reference" not in [s.split("[")[0] for s in values.get("attacks", [])]:
        values["attacks"] = [*values.get("attacks", DATASET_FEATURES), "reference"]
    spec = make_spec(DatasetInferenceSpec, values)
    built = model if model is not None and not isinstance(model, (str, Path)) else None
    return run_dataset_inference(spec, built, store=store, console=console, write=write)
