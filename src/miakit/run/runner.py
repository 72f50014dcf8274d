"""The runner stage: fit attacks on the calibration set, collect their signals in rounds, score every sample.

Shared by ``audit``, ``infer-dataset``, the document reference scores and the conformance checks, so that no
entry point re-implements the signal protocol.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from miakit.attacks import Attack
from miakit.attacks.base import MissingPrerequisite, ModelFacts
from miakit.data import Sample
from miakit.errors import MiakitError

MAX_ROUNDS = 10


def collect_signals(engine: Any, attacks: Sequence[Attack], samples: Sequence[Sample], *, max_rounds: int = MAX_ROUNDS):
    """Every signal the attacks need for ``samples``: their requests, then rounds of follow-up requests that
    depend on earlier signals (e.g. neighbours' token statistics) until no attack asks for anything new.

    An attack still asking for new signals after ``max_rounds`` follow-up rounds is an error naming it: a silent
    stop would score it on missing signals.
    """
    from miakit.signals.engine import Signals

    observe_models(engine, attacks)
    signals = engine.run([r for attack in attacks for r in attack.requests(samples)])
    for _ in range(max_rounds):
        more = {a: [r for r in a.more_requests(samples, signals) if r not in signals] for a in attacks}
        if not any(more.values()):
            return signals
        signals = Signals({**signals, **engine.run([r for rs in more.values() for r in rs])})
    still = [a.column_name() for a in attacks if any(r not in signals for r in a.more_requests(samples, signals))]
    if still:
        raise MiakitError(
            f"{', '.join(still)} still asked for new signals after {max_rounds} follow-up rounds; an attack's "
            "more_requests() must stop asking once its signals are there."
        )
    return signals


def model_facts(engine: Any) -> dict[str | None, ModelFacts]:
    """The context length and tokenizer identity of every model the engine serves (None: the target); read from
    each target's identity, so nothing loads."""
    return {
        name: ModelFacts(
            max_length=int(getattr(target, "max_length", 0) or 0),
            tokenizer_fingerprint=str(getattr(target, "tokenizer_fingerprint", "")),
            prepend_bos=bool(getattr(engine, "prepend_bos", False)),
        )
        for name, target in engine.targets.items()
    }


def observe_models(engine: Any, attacks: Sequence[Attack]) -> None:
    """Tell every attack the facts of the models it reads (context length, tokenizer) before it fits or asks."""
    facts = model_facts(engine)
    for attack in attacks:
        attack.observe(facts)


def fit_attacks(
    engine: Any,
    attacks: Mapping[str, Attack],
    calibration: Sequence[Sample],
    *,
    skipped: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Fit every attack on the calibration samples (one engine run for all their calibration requests); returns
    ``{"fitted": {column: words}, "details": {column: numbers}}`` for the report.

    With ``skipped`` (a dict), an attack whose prerequisite the calibration set lacks (``calibration_problem``,
    or ``MissingPrerequisite`` raised by ``fit``) is left out, its column and reason recorded there; without
    it, that is an error."""
    observe_models(engine, list(attacks.values()))
    usable = dict(attacks)
    if skipped is not None:
        for column, attack in attacks.items():
            problem = attack.calibration_problem(calibration)
            if problem:
                skipped[column] = problem
                del usable[column]
    signals = engine.run([r for attack in usable.values() for r in attack.calibration_requests(calibration)])
    for column, attack in list(usable.items()):
        try:
            attack.fit(calibration, signals)
        except MissingPrerequisite as exc:
            if skipped is None:
                raise
            skipped[column] = str(exc)
            del usable[column]
    return {
        "fitted": {c: a.fitted_on() for c, a in usable.items() if a.fitted_on()},
        "details": {c: a.fitted_details() for c, a in usable.items() if a.fitted_details()},
    }


def score_attacks(
    engine: Any, attacks: Mapping[str, Attack], samples: Sequence[Sample], *, max_rounds: int = MAX_ROUNDS
) -> dict[str, np.ndarray]:
    """Column -> float64 scores of every attack on ``samples``, all signals collected in one protocol run."""
    signals = collect_signals(engine, list(attacks.values()), samples, max_rounds=max_rounds)
    columns: dict[str, np.ndarray] = {}
    for column, attack in attacks.items():
        scores = np.asarray(attack.score(samples, signals), dtype=np.float64)
        if scores.shape != (len(samples),):
            raise RuntimeError(f"attack {column} returned shape {scores.shape} for {len(samples)} samples")
        columns[column] = scores
    return columns


@dataclass
class RunScores:
    """What the runner hands to the evaluator and writer: score columns, labels (-1 unknown), what attacks were
    fitted on, known non-member scores for documents, canary exposures and the runner's warnings."""

    columns: dict[str, np.ndarray]
    labels: np.ndarray
    calibration: dict[str, Any] | None = None
    known: dict[str, Any] = field(default_factory=dict)
    canaries: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def run_attacks(engine: Any, plan: Any, data: Any, spec: Any, *, timings: Any = None) -> RunScores:
    """Fit on the calibration set, score the evaluated samples, score known non-member documents for the
    document statistics, and measure canary exposure: the whole model-facing part of an audit."""
    stage = timings.stage if timings is not None else (lambda name: contextlib.nullcontext())
    samples = data.evaluation.samples
    calibration = None
    if data.calibration is not None:
        skipped: dict[str, str] = {}
        with stage("calibration"):
            fitted = fit_attacks(engine, plan.attacks, data.calibration.samples, skipped=skipped)
            calibration = {**data.calibration_info, **fitted}
        skip_attacks(plan, skipped)
    with stage("signals_and_scoring"):
        columns = score_attacks(engine, plan.attacks, samples)
    labels = np.array([s.label if s.label is not None else -1 for s in samples])
    out = RunScores(columns, labels, calibration)
    if data.evaluation.is_labelled and any(s.group is not None for s in samples) and data.calibration is not None:
        with stage("documents"):
            out.known = known_nonmember_scores(engine, plan.attacks, data.calibration.samples)
    if spec.canaries:
        from miakit.scenarios.canaries import read_canaries

        with stage("canaries"):
            out.canaries = canary_exposures(engine, read_canaries(spec.canaries))
    out.warnings = [
        *data.evaluation.warnings,
        *length_warnings(engine, samples),
        *score_warnings(columns, plan.attacks, spec.nan_policy),
        *attack_notes(plan.attacks),
        *(f"{name}: {note}" for name, notes in engine.notes.items() for note in notes.fallbacks),
    ]
    if out.known:
        from miakit.evaluate.documents import chunk_length_warning

        known = [s for s in data.calibration.samples if s.label == 0]
        warning = chunk_length_warning(samples, known)
        if warning:
            out.warnings.append(warning)
    return out


def skip_attacks(plan: Any, skipped: Mapping[str, str]) -> None:
    """Move the attacks the run's data cannot serve from the plan's attacks to its skipped ones (with the reason);
    an error when none is left."""
    for column, reason in skipped.items():
        plan.attacks.pop(column, None)
        plan.skipped[column] = reason
    if not plan.attacks:
        raise MiakitError("No attack can run: " + "; ".join(f"{k}: {v}" for k, v in plan.skipped.items()))


def attack_notes(attacks: Mapping[str, Attack]) -> list[str]:
    """What each attack says about how it adapted to the run (prefix shots that fit, a per-byte comparison, a
    probe below chance), prefixed with its column."""
    return [f"{column}: {note}" for column, attack in attacks.items() for note in attack.notes()]


def known_nonmember_scores(engine: Any, attacks: Mapping[str, Attack], calibration: Sequence[Sample]) -> dict[str, Any]:
    """Scores of the calibration non-members (known non-member documents) by every attack not fitted on them.

    The reference of the document statistics (Puerto et al.). Attacks fitted on the calibration set would
    score their own training samples, so they keep the other documents as reference. Returns
    ``{"scores": {column: array}, "n_chunks": int, "n_documents": int}``, empty without non-members.
    """
    known = [s for s in calibration if s.label == 0]
    usable = {c: a for c, a in attacks.items() if not a.needs_calibration}
    if not known or not usable:
        return {}
    scores = score_attacks(engine, usable, known)
    return {"scores": scores, "n_chunks": len(known), "n_documents": len({s.document for s in known})}


def canary_exposures(engine: Any, canaries: Sequence[Any]) -> list[dict[str, Any]]:
    """Exposure of each canary under the engine's target: the secret's log-likelihood given the prefix, ranked
    among the candidates' (one batched, stored engine pass over all of them)."""
    from miakit.scenarios.canaries import exposure
    from miakit.signals.requests import TokenStatsRequest

    requests = {
        (c.id, s): TokenStatsRequest(text=s, context=c.prefix) for c in canaries for s in (c.secret, *c.candidates)
    }
    signals = engine.run(list(requests.values()))

    def ll(canary: Any, secret: str) -> float:
        return float(np.sum(signals[requests[(canary.id, secret)]].logprob, dtype=np.float64))

    rows = []
    for c in canaries:
        secret = ll(c, c.secret)
        row = {"id": c.id, "repeats": c.repeats, "prefix": c.prefix, "secret": c.secret}
        row.update(exposure(secret, [ll(c, s) for s in c.candidates], space_size=c.space_size))
        row["secret_logprob"] = secret
        rows.append(row)
    return rows


def score_warnings(columns: Mapping[str, np.ndarray], attacks: Mapping[str, Attack], nan_policy: str) -> list[str]:
    """NaN and infinite scores per attack, counted (never dropped), with what the attack says they mean."""
    out = []
    for column, attack in attacks.items():
        values = columns[column]
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        peers = [a for a in attacks.values() if type(a) is type(attack) and a is not attack]
        hint = attack.score_hint(values, peers) if n_nan or n_inf else None
        extra = f" {hint}" if hint else ""
        if n_nan:
            out.append(f"{column}: {n_nan} of {len(values)} scores are NaN (policy '{nan_policy}').{extra}")
        if n_inf:
            out.append(f"{column}: {n_inf} of {len(values)} scores are infinite (ranked as extremes).{extra}")
    return out


def length_warnings(engine: Any, samples: Sequence[Sample]) -> list[str]:
    """Texts longer than the target's context (scored with rolling windows) or with no scored token."""
    from miakit.signals.requests import TokenLengthRequest

    target = engine.targets[None]
    # A server without /tokenize has no token counts to warn on. Asked of the class: a deferred local target
    # would load its model to answer an attribute it lacks.
    if hasattr(type(target), "tokenizes") and not target.tokenizes:
        return []
    requests = [TokenLengthRequest(s.text) for s in samples]
    signals = engine.run(requests)  # stored: a cached rerun needs no tokenizer
    lengths = [signals[r] + (1 if engine.prepend_bos else 0) for r in requests]
    n_long = sum(n > target.max_length for n in lengths)
    n_short = sum(n < 2 for n in lengths)
    out = []
    if n_long:
        out.append(
            f"{n_long} of {len(samples)} texts are longer than the target's context ({target.max_length} "
            f"tokens): scored with rolling windows (stride {engine.stride_for(target)}), every token once, "
            "never truncated."
        )
    if n_short:
        out.append(f"{n_short} text(s) have a single token, unscored without --prepend-bos: their scores are NaN.")
    return out
