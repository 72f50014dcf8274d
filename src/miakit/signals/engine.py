"""The engine: the only code that talks to backends and the store.

Requests from every attack are de-duplicated, looked up in the store, and only the misses are computed:
tokenised, cut into rolling windows where longer than the model context, sorted longest first, run in
batches, and committed to the store batch by batch so that a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from miakit.data.corpus import read_corpus_texts
from miakit.errors import MiakitError
from miakit.signals.requests import (
    GradNormRequest,
    HiddenStatesRequest,
    NeighboursRequest,
    NoisyLossRequest,
    Request,
    TokenCountsRequest,
    TokenStatsRequest,
)
from miakit.signals.store import Store
from miakit.signals.token_stats import (
    STATS_VERSION,
    TokenStats,
    array_from_bytes,
    array_to_bytes,
    counts_from_bytes,
    counts_to_bytes,
)


@dataclass
class Counts:
    """What a run computed versus read from the store (recorded in every manifest).

    forward_passes_computed counts sequences (rolling windows) run through a model; forward_passes_cached
    counts stored items read instead (each would have cost at least one pass). Tokens are scored tokens.
    """

    forward_passes_computed: int = 0
    forward_passes_cached: int = 0
    tokens_computed: int = 0
    tokens_cached: int = 0
    backward_passes_computed: int = 0  # gradient attacks: one backward pass per text

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ModelNotes:
    """Per-model facts the report should mention."""

    max_length: int = 0
    windowed_texts: int = 0
    unscored_texts: int = 0
    prefix_cached_texts: int = 0  # scored with a shared prefix's key/value cache computed once
    truncated_contexts: int = 0  # contexts cut from the left to fit the text into the window
    seconds: float = 0.0


@dataclass
class Signals(Mapping):
    """Request -> signal, as handed to ``Attack.score``."""

    values: dict[Any, Any] = field(default_factory=dict)

    def __getitem__(self, request: Any) -> Any:
        try:
            return self.values[request]
        except KeyError:
            raise KeyError(f"signal not computed for {request!r}: did the attack list it in requests()?") from None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def rolling_windows(n_tokens: int, first: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows (start, end, first scored offset) so that positions first..n-1 are each scored exactly once.

    The first window starts at 0; later ones advance by ``stride`` and score only their new tokens, so every
    token has at least ``max_length - stride`` tokens of context (stride 1 = maximal context everywhere).
    """
    first = max(1, first)
    out: list[tuple[int, int, int]] = []
    pos = first
    if pos < min(n_tokens, max_length):
        end = min(n_tokens, max_length)
        out.append((0, end, pos))
        pos = end
    while pos < n_tokens:
        end = min(n_tokens, pos + stride)
        start = end - max_length
        out.append((start, end, pos - start))
        pos = end
    return out


def _digest(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class Engine:
    """Computes signals for requests through the targets it knows, reading and writing the store."""

    def __init__(
        self,
        targets: Mapping[str | None, Any],
        store: Store | None = None,
        *,
        batch_size: int = 8,
        prepend_bos: bool = False,
        stride: int | None = None,
        default_corpus: str | Path | None = None,
        progress: bool = True,
        mlms: Mapping[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise MiakitError(f"--batch-size must be at least 1 (got {batch_size}).")
        self.targets = dict(targets)
        self.store = store
        self.batch_size = batch_size
        self.prepend_bos = prepend_bos
        self.stride = stride
        self.default_corpus = Path(default_corpus) if default_corpus else None
        self.progress = progress
        self.mlms: dict[str, Any] = dict(mlms or {})  # masked LMs proposing neighbours, by name (lazily built)
        self.counts = Counts()
        self.notes: dict[str, ModelNotes] = defaultdict(ModelNotes)

    # ---- public -------------------------------------------------------------------------------------
    def run(self, requests: Iterable[Request]) -> Signals:
        """Signals for all requests: stored ones read back, the rest computed model by model."""
        unique = list(dict.fromkeys(requests))
        by_model: dict[str | None, list[Request]] = defaultdict(list)
        for request in unique:
            by_model[request.model].append(request)
        values: dict[Any, Any] = {}
        for model_name in sorted(by_model, key=lambda m: (m is not None, m or "")):
            target = self._target(model_name)
            group = by_model[model_name]
            started = time.perf_counter()
            values.update(self._token_counts(target, [r for r in group if isinstance(r, TokenCountsRequest)]))
            values.update(self._token_stats(target, [r for r in group if isinstance(r, TokenStatsRequest)]))
            values.update(self._arrays(target, [r for r in group if isinstance(r, ARRAY_REQUESTS)]))
            values.update(self._neighbours([r for r in group if isinstance(r, NeighboursRequest)]))
            self.notes[target.name].seconds += time.perf_counter() - started
            if model_name is not None:
                target.release()
        return Signals(values)

    def stride_for(self, target: Any) -> int:
        stride = self.stride or max(1, target.max_length // 2)
        return min(stride, target.max_length - 1)

    # ---- token statistics ---------------------------------------------------------------------------
    def _target(self, model_name: str | None) -> Any:
        if model_name not in self.targets:
            known = ", ".join(str(k) for k in self.targets if k is not None) or "none"
            raise MiakitError(f"Unknown model '{model_name}' requested; reference models given: {known}.")
        return self.targets[model_name]

    def _stats_key(self, target: Any, request: TokenStatsRequest) -> str:
        return _digest(
            [
                target.fingerprint,
                target.tokenizer_fingerprint,
                request.key(),
                self.prepend_bos,
                target.max_length,
                self.stride_for(target),
                STATS_VERSION,
            ]
        )

    def _encode(self, target: Any, request: TokenStatsRequest) -> tuple[list[int], int]:
        if request.context:
            ctx, cont = target.encode_pair(request.context, request.text)
            # A context too long to fit with the text is cut from the left (its end, next to the text, stays),
            # as ReCaLL drops its first shots; a text that alone overflows keeps the rolling windows.
            budget = target.max_length - len(cont) - (1 if self.prepend_bos else 0)
            if len(ctx) > budget >= 1:
                ctx = ctx[len(ctx) - budget :]
                self.notes[target.name].truncated_contexts += 1
            ids, first = ctx + cont, len(ctx)
        else:
            ids, first = target.encode(request.text), 1
        if self.prepend_bos:
            bos = target.bos_id()
            if not ids or ids[0] != bos:
                ids = [bos, *ids]
                first = first + 1 if request.context else 1
        return ids, max(1, first)

    def _token_stats(self, target: Any, requests: list[TokenStatsRequest]) -> dict[Any, TokenStats]:
        if not requests:
            return {}
        keys = {r: self._stats_key(target, r) for r in requests}
        stored = self.store.get_many(keys.values()) if self.store is not None else {}
        results: dict[Any, TokenStats] = {}
        misses = []
        for r in requests:
            blob = stored.get(keys[r])
            if blob is None:
                misses.append(r)
                continue
            results[r] = TokenStats.from_bytes(blob)
            self.counts.forward_passes_cached += 1
            self.counts.tokens_cached += len(results[r])
        if not misses:
            return results

        notes = self.notes[target.name]
        notes.max_length = target.max_length
        stride = self.stride_for(target)
        items: list[tuple[TokenStatsRequest, int, list[int], int]] = []
        n_windows: dict[TokenStatsRequest, int] = {}
        empty: dict[str, bytes] = {}
        for r in misses:
            ids, first = self._encode(target, r)
            windows = rolling_windows(len(ids), first, target.max_length, stride)
            n_windows[r] = len(windows)
            if len(windows) > 1:
                notes.windowed_texts += 1
            if not windows:
                notes.unscored_texts += 1
                results[r] = TokenStats.concatenate([])
                empty[keys[r]] = results[r].to_bytes()
            for w, (start, end, rel_first) in enumerate(windows):
                items.append((r, w, ids[start:end], rel_first))
        if self.store is not None:
            self.store.put_many(empty)
        parts: dict[TokenStatsRequest, list[dict[str, np.ndarray] | None]] = {
            r: [None] * n for r, n in n_windows.items() if n
        }
        shared, items = self._shared_prefixes(target, items, n_windows)
        total_tokens = sum(len(ids) - rel_first for _, _, ids, rel_first in items)
        total_tokens += sum(len(cont) for group in shared.values() for _, cont in group)

        def finish(batch_requests: list[tuple[TokenStatsRequest, int]], outputs: list[dict[str, np.ndarray]]) -> int:
            finished: dict[str, bytes] = {}
            scored = 0
            for (r, w), out in zip(batch_requests, outputs, strict=True):
                scored += len(out["logprob"])
                slots = parts[r]
                slots[w] = out
                if all(p is not None for p in slots):
                    results[r] = TokenStats.concatenate(slots)  # type: ignore[arg-type]
                    finished[keys[r]] = results[r].to_bytes()
                    del parts[r]
            if self.store is not None:
                self.store.put_many(finished)
            self.counts.forward_passes_computed += len(batch_requests)
            self.counts.tokens_computed += scored
            return scored

        with _progress(self.progress, f"{_short(target.name)}: token statistics", total_tokens) as advance:
            for prefix, group in shared.items():
                group.sort(key=lambda item: -len(item[1]))
                for start in range(0, len(group), self.batch_size):
                    batch = group[start : start + self.batch_size]
                    try:
                        outputs = target.token_stats_prefixed(list(prefix), [cont for _, cont in batch])
                    except NotImplementedError:  # no usable key/value cache: score whole sequences instead
                        items.extend((r, 0, [*prefix, *cont], len(prefix)) for r, cont in group[start:])
                        break
                    advance(finish([(r, 0) for r, _ in batch], outputs))
                    notes.prefix_cached_texts += len(batch)
            items.sort(key=lambda item: -len(item[2]))
            for start in range(0, len(items), self.batch_size):
                batch = items[start : start + self.batch_size]
                outputs = target.token_stats([(ids, rel_first) for _, _, ids, rel_first in batch])
                advance(finish([(r, w) for r, w, _, _ in batch], outputs))
        return results

    def _shared_prefixes(
        self,
        target: Any,
        items: list[tuple[TokenStatsRequest, int, list[int], int]],
        n_windows: Mapping[TokenStatsRequest, int],
    ) -> tuple[dict[tuple[int, ...], list[tuple[TokenStatsRequest, list[int]]]], list[Any]]:
        """Split off single-window items whose context tokens are shared by several requests: those run with the
        prefix's key/value cache computed once (``token_stats_prefixed``); the rest run as whole sequences."""
        if not hasattr(target, "token_stats_prefixed"):
            return {}, items
        groups: dict[tuple[int, ...], list[tuple[TokenStatsRequest, list[int]]]] = defaultdict(list)
        single = [it for it in items if it[0].context and it[3] >= 1 and n_windows[it[0]] == 1]
        for r, _, ids, first in single:
            groups[tuple(ids[:first])].append((r, ids[first:]))
        shared = {prefix: group for prefix, group in groups.items() if len(group) >= 2}
        taken = {r for group in shared.values() for r, _ in group}
        return shared, [it for it in items if it[0] not in taken]

    # ---- white-box signals: one array per text ------------------------------------------------------
    def _arrays(self, target: Any, requests: list[Any]) -> dict[Any, np.ndarray]:
        """Gradient norms, noisy losses and mean hidden states; texts beyond the context use their first
        ``max_length`` tokens (one window)."""
        if not requests:
            return {}
        keys = {
            r: _digest(
                [target.fingerprint, target.tokenizer_fingerprint, r.key(), self.prepend_bos, target.max_length, 1]
            )
            for r in requests
        }
        stored = self.store.get_many(keys.values()) if self.store is not None else {}
        results: dict[Any, np.ndarray] = {}
        misses = []
        for r in requests:
            blob = stored.get(keys[r])
            if blob is None:
                misses.append(r)
            else:
                results[r] = array_from_bytes(blob)
                self.counts.forward_passes_cached += 1
        if not misses:
            return results
        encoded = {}
        for r in misses:
            ids, first = self._encode(target, TokenStatsRequest(r.text))
            if len(ids) > target.max_length:
                ids = ids[: target.max_length]
                self.notes[target.name].windowed_texts += 1
            encoded[r] = (ids, first)
        label = {
            GradNormRequest: "gradient norms",
            NoisyLossRequest: "noisy losses",
            HiddenStatesRequest: "hidden states",
        }
        for kind in (GradNormRequest, NoisyLossRequest, HiddenStatesRequest):
            todo = [r for r in misses if isinstance(r, kind)]
            if not todo:
                continue
            todo.sort(key=lambda r: -len(encoded[r][0]))
            step = self.batch_size if kind is HiddenStatesRequest else 1
            with _progress(self.progress, f"{_short(target.name)}: {label[kind]}", len(todo)) as advance:
                for start in range(0, len(todo), step):
                    batch = todo[start : start + step]
                    if kind is HiddenStatesRequest:
                        outputs = target.hidden_means([encoded[r][0] for r in batch])
                    elif kind is GradNormRequest:
                        outputs = [target.grad_norms(*encoded[batch[0]])]
                    else:
                        r = batch[0]
                        outputs = [target.noisy_losses(*encoded[r], sigma=r.sigma, n=r.n, seed=r.seed)]
                    finished = {}
                    for r, out in zip(batch, outputs, strict=True):
                        results[r] = np.asarray(out)
                        finished[keys[r]] = array_to_bytes(results[r])
                        passes = r.n if kind is NoisyLossRequest else 1
                        self.counts.forward_passes_computed += passes
                        if kind is GradNormRequest:
                            self.counts.backward_passes_computed += 1
                    if self.store is not None:
                        self.store.put_many(finished)
                    advance(len(batch))
        return results

    # ---- neighbours from a masked LM ----------------------------------------------------------------
    def mlm(self, name: str) -> Any:
        """The masked LM called ``name`` (a directory or hub id), loaded on first use."""
        if name not in self.mlms:
            from miakit.targets.hf_mlm import HFMaskedLM

            self.mlms[name] = HFMaskedLM.from_pretrained(name)
        return self.mlms[name]

    def _neighbours(self, requests: list[NeighboursRequest]) -> dict[Any, list[str]]:
        results: dict[Any, list[str]] = {}
        by_mlm: dict[str, list[NeighboursRequest]] = defaultdict(list)
        for r in requests:
            by_mlm[r.mlm].append(r)
        for name, group in by_mlm.items():
            mlm = self.mlm(name)
            keys = {r: _digest([mlm.fingerprint, mlm.tokenizer_fingerprint, r.key(), 1]) for r in group}
            stored = self.store.get_many(keys.values()) if self.store is not None else {}
            misses = []
            for r in group:
                blob = stored.get(keys[r])
                if blob is None:
                    misses.append(r)
                else:
                    results[r] = json.loads(blob.decode("utf-8"))
            settings = defaultdict(list)
            for r in misses:
                settings[(r.n, r.top_k, r.dropout, r.seed)].append(r)
            with _progress(self.progress, f"{_short(name)}: neighbours", len(misses)) as advance:
                for (n, top_k, dropout, seed), todo in settings.items():
                    for start in range(0, len(todo), 16):
                        batch = todo[start : start + 16]
                        texts = mlm.neighbours(
                            [r.text for r in batch], n, top_k=top_k, dropout=dropout, seed=seed,
                            batch_size=self.batch_size * 4,
                        )  # fmt: skip
                        finished = {}
                        for r, neighbours in zip(batch, texts, strict=True):
                            results[r] = list(neighbours)
                            finished[keys[r]] = json.dumps(results[r]).encode("utf-8")
                        if self.store is not None:
                            self.store.put_many(finished)
                        advance(len(batch))
            mlm.release()
        return results

    # ---- token counts over a reference corpus -------------------------------------------------------
    def _token_counts(self, target: Any, requests: list[TokenCountsRequest]) -> dict[Any, np.ndarray]:
        results: dict[Any, np.ndarray] = {}
        for r in requests:
            path = Path(r.corpus) if r.corpus else self.default_corpus
            if path is None:
                raise MiakitError("No reference corpus given for token frequencies and no default is set.")
            if not path.is_file():
                raise MiakitError(f"Reference corpus '{path}' does not exist.")
            key = _digest([r.kind, target.tokenizer_fingerprint, target.vocab_size, _file_digest(path)])
            blob = self.store.get_many([key]).get(key) if self.store is not None else None
            if blob is not None:
                results[r] = counts_from_bytes(blob)
                continue
            texts = read_corpus_texts(path)
            with _progress(self.progress, f"token frequencies of {path.name}", 1) as advance:
                counts = target.count_tokens(texts)
                advance(1)
            results[r] = counts
            if self.store is not None:
                self.store.put_many({key: counts_to_bytes(counts)})
        return results


ARRAY_REQUESTS = (GradNormRequest, NoisyLossRequest, HiddenStatesRequest)


def _short(name: str) -> str:
    return name if len(name) <= 40 else "…" + name[-39:]


class _progress:
    """A rich progress bar (or nothing) yielding an ``advance(n)`` callable."""

    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.enabled, self.description, self.total = enabled, description, total
        self._bar: Any = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tokens"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.start()
        task = self._bar.add_task(self.description, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
