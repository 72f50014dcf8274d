"""Targets and the engine of a run: the audited model, the reference models the plan reads, the store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from miakit.errors import MiakitError


def make_target(source: Any, spec: Any) -> Any:
    """A causal-LM target from a directory or hub id, or ``source`` itself when it is already a built target
    (Python API). Its identity comes from the cache's memo when known; the tokenizer and weights load on the
    first signal computed, so a fully stored rerun imports no torch."""
    if not isinstance(source, str):
        return source
    if getattr(spec, "api_base", None) or getattr(spec, "api_model", None):
        if source:
            raise MiakitError(
                f"Both --model ({source}) and --api-base/--api-model are given: name the target once, either as "
                "--model openai:BASE_URL#MODEL or with --api-base and --api-model."
            )
        source = f"openai:{spec.api_base or ''}#{spec.api_model or ''}"
    if not source:
        raise MiakitError("No target model given: pass --model (a local directory or a hub id) or --scenario.")
    if source.startswith("openai:"):
        return api_target(source, spec)
    from miakit.targets.deferred import DeferredCausalLM

    return DeferredCausalLM(
        source,
        revision=spec.revision,
        dtype=spec.dtype,
        device=spec.device,
        trust_remote_code=spec.trust_remote_code,
        max_length=spec.max_length,
        allow_pickle=getattr(spec, "allow_pickle", False),
    )


def api_target(source: str, spec: Any) -> Any:
    """A model behind an OpenAI-compatible server, ``openai:BASE_URL#MODEL``."""
    from miakit.targets.openai_api import OpenAICompatibleTarget, parse_model_spec

    base_url, model = parse_model_spec(source)
    return OpenAICompatibleTarget(
        base_url,
        model,
        api_key_env=getattr(spec, "api_key_env", None),
        concurrency=getattr(spec, "api_concurrency", 8),
        timeout=getattr(spec, "api_timeout", 600.0),
        max_retries=getattr(spec, "api_retries", 6),
        top_logprobs=getattr(spec, "api_top_logprobs", None),
        max_length=spec.max_length,
        price_prompt=getattr(spec, "api_price_prompt", None),
        price_completion=getattr(spec, "api_price_completion", None),
        endpoint=getattr(spec, "api_endpoint", "auto"),
        chat_instruction=getattr(spec, "api_chat_instruction", None),
    )


def target_warnings(target: Any) -> list[str]:
    """What the run must say about its target: a changed model behind a served name, what the server could
    not do, a log-prob alignment that could not be checked."""
    description = target.describe()
    warnings = [description["drift"]] if description.get("drift") else []
    negotiated = description.get("negotiated") or {}
    warnings += [f"API target: {note}." for note in negotiated.get("notes", [])]
    if str(negotiated.get("alignment", "")).startswith("unchecked"):
        warnings.append(
            f"API target: log-prob alignment {negotiated['alignment']}; likelihood scores are trusted as is."
        )
    return warnings


def bundled_corpus() -> Any:
    """The bundled public-domain corpus (DC-PDD's default reference corpus), or None when it is missing."""
    try:
        from miakit.scenarios.corpus import bundled_corpus_path

        return bundled_corpus_path()
    except (ImportError, FileNotFoundError):
        return None


def open_store(store: Any, spec: Any) -> Any:
    """The signal store: ``store`` given in Python, none with ``cache: false``, else the default location."""
    if store != "default":
        return store
    if not spec.cache:
        return None
    from miakit.signals.store import Store

    return Store()


def open_engine(spec: Any, target: Any, references: Sequence[str], store: Any) -> tuple[Any, dict[str, Any]]:
    """The engine over the target and every named reference model; returns it and the reference targets."""
    from miakit.signals.engine import Engine

    refs = {name: make_target(name, spec) for name in dict.fromkeys(references)}
    engine = Engine(
        {None: target, **refs},
        store,
        batch_size=spec.batch_size,
        prepend_bos=spec.prepend_bos,
        stride=spec.stride,
        default_corpus=spec.reference_corpus or bundled_corpus(),
        progress=spec.progress,
        allow_pickle=getattr(spec, "allow_pickle", False),
    )
    return engine, refs
