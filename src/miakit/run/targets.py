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
    if not source:
        raise MiakitError("No target model given: pass --model (a local directory or a hub id) or --scenario.")
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
