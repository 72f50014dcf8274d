"""The engine: the only code that talks to backends and the store.

Requests from every attack are de-duplicated and pass through one store read-through: keys are looked up,
hits decoded, and only the misses are computed (token statistics tokenised, cut into rolling windows where
longer than the model context, sorted longest first and run in batches), each batch committed to the store as
it finishes so that a killed run resumes where it stopped. A store key holds the request's kind and version
(``version`` on its class), the identity of what computes it (model and tokenizer fingerprints, settings) and
the request's content.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from miakit.data.corpus import read_corpus_texts
from miakit.errors import MiakitError
from miakit.progress import PlainProgress, interactive
from miakit.signals.generation import Generation
from miakit.signals.next_tokens import NextTokens
from miakit.signals.requests import (
    EmbeddingRequest,
    GenerationRequest,
    GradNormRequest,
    HiddenStatesRequest,
    NeighboursRequest,
    NextTokensRequest,
    NoisyLossRequest,
    Request,
    TokenCountsRequest,
    TokenLengthRequest,
    TokenStatsRequest,
)
from miakit.signals.store import Store, decode_or_miss
from miakit.signals.token_stats import (
    TokenStats,
    array_from_bytes,
    array_to_bytes,
    counts_from_bytes,
    counts_to_bytes,
)
from miakit.targets.fingerprint import file_sha256_memo


@dataclass
class Counts:
    """What a run computed versus read from the store (recorded in every manifest).

    forward_passes_computed counts sequences (rolling windows, masked-LM inputs) run through a model;
    forward_passes_cached counts stored items read instead (each would have cost at least one pass; token
    counts over a corpus cost none). Tokens are scored tokens.
    """

    forward_passes_computed: int = 0
    forward_passes_cached: int = 0
    tokens_computed: int = 0
    tokens_cached: int = 0
    backward_passes_computed: int = 0  # gradient attacks: one backward pass per text

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class KindCounts:
    """Requests of one kind computed versus read from the store."""

    computed: int = 0
    cached: int = 0


@dataclass
class ModelNotes:
    """Per-model facts the report should mention."""

    max_length: int = 0
    windowed_texts: int = 0
    unscored_texts: int = 0
    prefix_cached_texts: int = 0  # scored with a shared prefix's key/value cache computed once
    truncated_contexts: int = 0  # contexts cut from the left to fit the text into the window
    seconds: float = 0.0
    fallbacks: list[str] = field(default_factory=list)  # slower paths a backend took instead of its fast one, why


@dataclass
class Signals(Mapping):
    """Request -> signal, as handed to ``Attack.score`` (a read-only mapping)."""

    entries: dict[Any, Any] = field(default_factory=dict)

    def __getitem__(self, request: Any) -> Any:
        try:
            return self.entries[request]
        except KeyError:
            raise KeyError(f"signal not computed for {request!r}: did the attack list it in requests()?") from None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class Codec:
    """How one signal kind is stored, and what a stored value stands for in the counts."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    passes: int = 1  # forward passes one stored value saves (at least)
    tokens: Callable[[Any], int] = lambda value: 0  # scored tokens it holds


def _json_to_bytes(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def _json_from_bytes(blob: bytes) -> Any:
    return json.loads(blob.decode("utf-8"))


CODECS: dict[str, Codec] = {
    TokenStatsRequest.kind: Codec(TokenStats.to_bytes, TokenStats.from_bytes, tokens=len),
    TokenCountsRequest.kind: Codec(counts_to_bytes, counts_from_bytes, passes=0),
    TokenLengthRequest.kind: Codec(_json_to_bytes, _json_from_bytes, passes=0),
    GradNormRequest.kind: Codec(array_to_bytes, array_from_bytes),
    NoisyLossRequest.kind: Codec(array_to_bytes, array_from_bytes),
    HiddenStatesRequest.kind: Codec(array_to_bytes, array_from_bytes),
    NeighboursRequest.kind: Codec(_json_to_bytes, _json_from_bytes),
    GenerationRequest.kind: Codec(Generation.to_bytes, Generation.from_bytes, tokens=lambda g: 0),
    NextTokensRequest.kind: Codec(NextTokens.to_bytes, NextTokens.from_bytes, tokens=len),
    EmbeddingRequest.kind: Codec(array_to_bytes, array_from_bytes),
}
ARRAY_REQUESTS = (GradNormRequest, NoisyLossRequest, HiddenStatesRequest)


def store_key(request: Any, identity: Sequence[Any]) -> str:
    """The store key of a request: its kind and version, the identity of what computes it, its content."""
    return _digest([request.kind, request.version, *identity, request.key()])


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


Batches = Iterator[dict[Any, Any]]  # computed signals, one dict per batch (committed to the store as it comes)


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
        allow_pickle: bool = False,
        embedders: Mapping[str, Any] | None = None,
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
        self.allow_pickle = allow_pickle  # masked LMs too load pickle weights only when the user allows it
        self.embedders: dict[str, Any] = dict(embedders or {})  # sentence embedders, by name (lazily built)
        self.counts = Counts()
        self.kind_counts: dict[str, KindCounts] = defaultdict(KindCounts)  # by request kind
        self.notes: dict[str, ModelNotes] = defaultdict(ModelNotes)

    # ---- public -------------------------------------------------------------------------------------
    def run(self, requests: Iterable[Request]) -> Signals:
        """Signals for all requests: stored ones read back, the rest computed model by model, each request kind
        by its handler."""
        unique = list(dict.fromkeys(requests))
        by_model: dict[str | None, list[Request]] = defaultdict(list)
        for request in unique:
            by_model[request.model].append(request)
        values: dict[Any, Any] = {}
        for model_name in sorted(by_model, key=lambda m: (m is not None, m or "")):
            target = self._target(model_name)
            by_kind: dict[str, list[Request]] = defaultdict(list)
            for request in by_model[model_name]:
                by_kind[request.kind].append(request)
            started = time.perf_counter()
            for kind in self.HANDLERS:  # a fixed order: token lengths and counts before forward passes
                if by_kind.get(kind):
                    values.update(getattr(self, self.HANDLERS[kind])(target, by_kind.pop(kind)))
            if by_kind:
                raise MiakitError(f"No handler for request kind(s) {', '.join(sorted(by_kind))}.")
            self.notes[target.name].seconds += time.perf_counter() - started
            if model_name is not None:
                target.release()
        return Signals(values)

    HANDLERS: ClassVar[dict[str, str]] = {  # request kind -> the method computing it through the store
        TokenCountsRequest.kind: "_token_counts",
        TokenLengthRequest.kind: "_token_lengths",
        TokenStatsRequest.kind: "_token_stats",
        GenerationRequest.kind: "_generations",
        NextTokensRequest.kind: "_next_tokens",
        GradNormRequest.kind: "_arrays",
        NoisyLossRequest.kind: "_arrays",
        HiddenStatesRequest.kind: "_arrays",
        NeighboursRequest.kind: "_neighbours",
        EmbeddingRequest.kind: "_embeddings",
    }

    def stride_for(self, target: Any) -> int:
        stride = self.stride or max(1, target.max_length // 2)
        return min(stride, target.max_length - 1)

    # ---- the store read-through, shared by every request kind ---------------------------------------
    def _read_through(
        self,
        requests: Sequence[Any],
        identity: Callable[[Any], Sequence[Any]],
        compute: Callable[[list[Any]], Batches],
    ) -> dict[Any, Any]:
        """Stored signals of ``requests`` decoded, the misses computed by ``compute`` (batch by batch, each batch
        encoded and committed as it comes). ``identity(request)``: what computes it, part of its key."""
        if not requests:
            return {}
        keys = {r: store_key(r, identity(r)) for r in requests}
        stored = self.store.get_many(keys.values()) if self.store is not None else {}
        results: dict[Any, Any] = {}
        misses = []
        for r in requests:
            blob = stored.get(keys[r])
            if blob is None:
                misses.append(r)
                continue
            codec = CODECS[r.kind]
            value = decode_or_miss(self.store, keys[r], blob, codec.decode)
            if value is None:  # an unreadable stored value: recomputed, and the row replaced
                misses.append(r)
                continue
            results[r] = value
            self.counts.forward_passes_cached += codec.passes
            self.counts.tokens_cached += codec.tokens(value)
            self.kind_counts[r.kind].cached += 1
        if misses:
            for batch in compute(misses):
                results.update(batch)
                for r in batch:
                    self.kind_counts[r.kind].computed += 1
                if self.store is not None:
                    self.store.put_many({keys[r]: CODECS[r.kind].encode(v) for r, v in batch.items()})
        return results

    # ---- token statistics ---------------------------------------------------------------------------
    def _target(self, model_name: str | None) -> Any:
        if model_name not in self.targets:
            known = ", ".join(str(k) for k in self.targets if k is not None) or "none"
            raise MiakitError(f"Unknown model '{model_name}' requested; reference models given: {known}.")
        return self.targets[model_name]

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
        """Full-distribution statistics and each top-k approximation (``topk``) computed apart: a target scores
        one kind per call."""
        identity = [
            target.fingerprint,
            target.tokenizer_fingerprint,
            self.prepend_bos,
            target.max_length,
            self.stride_for(target),
        ]
        by_topk: dict[int, list[TokenStatsRequest]] = defaultdict(list)
        for r in requests:
            by_topk[r.topk].append(r)
        out: dict[Any, TokenStats] = {}
        for topk in sorted(by_topk):
            compute = partial(self._compute_stats, target, topk=topk)
            out.update(self._read_through(by_topk[topk], lambda r: identity, compute))
        return out

    def _compute_stats(self, target: Any, misses: list[TokenStatsRequest], topk: int = 0) -> Batches:
        notes = self.notes[target.name]
        notes.max_length = target.max_length
        stride = self.stride_for(target)
        items: list[tuple[TokenStatsRequest, int, list[int], int]] = []
        n_windows: dict[TokenStatsRequest, int] = {}
        empty: dict[TokenStatsRequest, TokenStats] = {}
        for r in misses:
            ids, first = self._encode(target, r)
            windows = rolling_windows(len(ids), first, target.max_length, stride)
            n_windows[r] = len(windows)
            if len(windows) > 1:
                notes.windowed_texts += 1
            if not windows:
                notes.unscored_texts += 1
                empty[r] = TokenStats.concatenate([])
            for w, (start, end, rel_first) in enumerate(windows):
                items.append((r, w, ids[start:end], rel_first))
        yield empty
        parts: dict[TokenStatsRequest, list[dict[str, np.ndarray] | None]] = {
            r: [None] * n for r, n in n_windows.items() if n
        }
        shared, items = self._shared_prefixes(target, items, n_windows)
        total_tokens = sum(len(ids) - rel_first for _, _, ids, rel_first in items)
        total_tokens += sum(len(cont) for group in shared.values() for _, cont in group)

        def finish(
            batch: list[tuple[TokenStatsRequest, int]], outputs: list[dict[str, np.ndarray]]
        ) -> tuple[dict[TokenStatsRequest, TokenStats], int]:
            """Requests whose last window is in this batch, reassembled; and the tokens scored."""
            finished: dict[TokenStatsRequest, TokenStats] = {}
            scored = 0
            for (r, w), out in zip(batch, outputs, strict=True):
                scored += len(out["logprob"])
                slots = parts[r]
                slots[w] = out
                if all(p is not None for p in slots):
                    finished[r] = TokenStats.concatenate(slots)  # type: ignore[arg-type]
                    del parts[r]
            self.counts.forward_passes_computed += len(batch)
            self.counts.tokens_computed += scored
            return finished, scored

        label = f"token statistics (top-{topk} approximation)" if topk else "token statistics"
        with _progress(self.progress, f"{_short(target.name)}: {label}", total_tokens) as advance:
            for prefix, group in shared.items():
                group.sort(key=lambda item: -len(item[1]))
                for start in range(0, len(group), self.batch_size):
                    batch = group[start : start + self.batch_size]
                    try:
                        conts = [cont for _, cont in batch]
                        outputs = (
                            target.token_stats_prefixed(list(prefix), conts, topk=topk)
                            if topk
                            else target.token_stats_prefixed(list(prefix), conts)
                        )
                    except NotImplementedError:  # no usable key/value cache: score whole sequences instead
                        items.extend((r, 0, [*prefix, *cont], len(prefix)) for r, cont in group[start:])
                        break
                    finished, scored = finish([(r, 0) for r, _ in batch], outputs)
                    notes.prefix_cached_texts += len(batch)
                    advance(scored)
                    yield finished
            items.sort(key=lambda item: -len(item[2]))
            batches = [items[start : start + self.batch_size] for start in range(0, len(items), self.batch_size)]
            calls = [[(ids, rel_first) for _, _, ids, rel_first in batch] for batch in batches]
            score = partial(target.token_stats, topk=topk) if topk else target.token_stats
            for index, outputs in map_batches(target, score, calls):
                finished, scored = finish([(r, w) for r, w, _, _ in batches[index]], outputs)
                advance(scored)
                yield finished

    def _shared_prefixes(
        self,
        target: Any,
        items: list[tuple[TokenStatsRequest, int, list[int], int]],
        n_windows: Mapping[TokenStatsRequest, int],
    ) -> tuple[dict[tuple[int, ...], list[tuple[TokenStatsRequest, list[int]]]], list[Any]]:
        """Split off single-window items whose context tokens are shared by several requests: those run with the
        prefix's key/value cache computed once (``token_stats_prefixed``); the rest run as whole sequences."""
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
        identity = [target.fingerprint, target.tokenizer_fingerprint, self.prepend_bos, target.max_length]
        return self._read_through(requests, lambda r: identity, partial(self._compute_arrays, target))

    def _compute_arrays(self, target: Any, misses: list[Any]) -> Batches:
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
            with _progress(self.progress, f"{_short(target.name)}: {label[kind]}", len(todo), "texts") as advance:
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
                        finished[r] = np.asarray(out)
                        self.counts.forward_passes_computed += r.n if kind is NoisyLossRequest else 1
                        if kind is GradNormRequest:
                            self.counts.backward_passes_computed += 1
                    advance(len(batch))
                    yield finished

    # ---- generation ---------------------------------------------------------------------------------
    def _generations(self, target: Any, requests: list[GenerationRequest]) -> dict[Any, Generation]:
        """Continuations, stored like token statistics (every request is seeded), so a rerun samples nothing."""
        identity = [target.fingerprint, target.tokenizer_fingerprint, target.max_length]
        return self._read_through(requests, lambda r: identity, partial(self._compute_generations, target))

    def _compute_generations(self, target: Any, misses: list[GenerationRequest]) -> Batches:
        todo = sorted(misses, key=lambda r: (-r.max_new_tokens, -len(r.prompt)))
        batches: list[list[GenerationRequest]] = [[]]
        for r in todo:  # about batch_size continuations per batch, a request's continuations never split
            if batches[-1] and sum(x.n for x in batches[-1]) + r.n > self.batch_size:
                batches.append([])
            batches[-1].append(r)
        total = sum(r.n for r in misses)
        with _progress(self.progress, f"{_short(target.name)}: generation", total, "continuations") as advance:
            for index, outputs in map_batches(target, target.generate, batches):
                batch = batches[index]
                self.counts.forward_passes_computed += sum(r.n for r in batch)
                advance(sum(r.n for r in batch))
                yield dict(zip(batch, outputs, strict=True))

    # ---- greedy next tokens after every prefix ------------------------------------------------------
    def _next_tokens(self, target: Any, requests: list[NextTokensRequest]) -> dict[Any, NextTokens]:
        """The greedy next token after every prefix of each text, one causal pass per text; texts beyond the
        context use their first ``max_length`` tokens (one window, as ``_arrays``)."""
        identity = [target.fingerprint, target.tokenizer_fingerprint, self.prepend_bos, target.max_length]
        return self._read_through(requests, lambda r: identity, partial(self._compute_next_tokens, target))

    def _compute_next_tokens(self, target: Any, misses: list[NextTokensRequest]) -> Batches:
        notes = self.notes[target.name]
        notes.max_length = target.max_length
        encoded: dict[NextTokensRequest, list[int]] = {}
        short: dict[Any, NextTokens] = {}
        for r in misses:
            ids, _ = self._encode(target, TokenStatsRequest(r.text))
            if len(ids) > target.max_length:
                ids = ids[: target.max_length]
                notes.windowed_texts += 1
            if len(ids) < 2:
                notes.unscored_texts += 1
                short[r] = NextTokens.empty(tuple(ids))
            else:
                encoded[r] = ids
        yield short
        todo = sorted(encoded, key=lambda r: -len(encoded[r]))
        batches = [todo[start : start + self.batch_size] for start in range(0, len(todo), self.batch_size)]
        calls = [[encoded[r] for r in batch] for batch in batches]
        total = sum(len(ids) - 1 for ids in encoded.values())
        with _progress(self.progress, f"{_short(target.name)}: greedy next tokens", total) as advance:
            for index, outputs in map_batches(target, target.next_tokens, calls):
                batch = batches[index]
                scored = sum(len(out) for out in outputs)
                self.counts.forward_passes_computed += len(batch)
                self.counts.tokens_computed += scored
                advance(scored)
                yield dict(zip(batch, outputs, strict=True))

    # ---- sentence embeddings ----------------------------------------------------------------------------
    def embedder(self, name: str) -> Any:
        """The sentence-transformers model called ``name`` (a directory or hub id), loaded on first use."""
        if name not in self.embedders:
            from miakit.targets.embedder import SentenceEmbedder

            self.embedders[name] = SentenceEmbedder.from_pretrained(name, allow_pickle=self.allow_pickle)
        return self.embedders[name]

    def _embeddings(self, _target: Any, requests: list[EmbeddingRequest]) -> dict[Any, np.ndarray]:
        results: dict[Any, np.ndarray] = {}
        by_embedder: dict[str, list[EmbeddingRequest]] = defaultdict(list)
        for r in requests:
            by_embedder[r.embedder].append(r)
        for name, group in by_embedder.items():
            embedder = self.embedder(name)
            identity = [embedder.fingerprint]
            results.update(
                self._read_through(
                    group, lambda r, identity=identity: identity, partial(self._compute_embeddings, embedder)
                )
            )
            embedder.release()
        return results

    def _compute_embeddings(self, embedder: Any, misses: list[EmbeddingRequest]) -> Batches:
        todo = sorted(misses, key=lambda r: -len(r.text))
        step = self.batch_size * 8  # short pieces: many per call
        with _progress(self.progress, f"{_short(embedder.name)}: embeddings", len(todo), "texts") as advance:
            for start in range(0, len(todo), step):
                batch = todo[start : start + step]
                vectors = embedder.embed([r.text for r in batch])
                self.counts.forward_passes_computed += len(batch)
                advance(len(batch))
                yield {r: np.asarray(v) for r, v in zip(batch, vectors, strict=True)}

    # ---- neighbours from a masked LM ----------------------------------------------------------------
    def mlm(self, name: str) -> Any:
        """The masked LM called ``name`` (a directory or hub id): tokenizer and config load on first use, its
        weights only when neighbours must be computed."""
        if name not in self.mlms:
            from miakit.targets.hf_mlm import HFMaskedLM

            self.mlms[name] = HFMaskedLM.from_pretrained(name, allow_pickle=self.allow_pickle)
        return self.mlms[name]

    def _neighbours(self, _target: Any, requests: list[NeighboursRequest]) -> dict[Any, list[str]]:
        results: dict[Any, list[str]] = {}
        by_mlm: dict[str, list[NeighboursRequest]] = defaultdict(list)
        for r in requests:
            by_mlm[r.mlm].append(r)
        for name, group in by_mlm.items():
            mlm = self.mlm(name)
            identity = [mlm.fingerprint, mlm.tokenizer_fingerprint]
            results.update(
                self._read_through(group, lambda r, identity=identity: identity, partial(self._compute_neighbours, mlm))
            )
            mlm.release()
        return results

    def _compute_neighbours(self, mlm: Any, misses: list[NeighboursRequest]) -> Batches:
        settings: dict[tuple[int, int, float, int], list[NeighboursRequest]] = defaultdict(list)
        for r in misses:
            settings[(r.n, r.top_k, r.dropout, r.seed)].append(r)
        with _progress(self.progress, f"{_short(mlm.name)}: neighbours", len(misses), "texts") as advance:
            for (n, top_k, dropout, seed), todo in settings.items():
                for start in range(0, len(todo), 16):
                    batch = todo[start : start + 16]
                    passes = getattr(mlm, "forward_passes", 0)
                    texts = mlm.neighbours(
                        [r.text for r in batch], n, top_k=top_k, dropout=dropout, seed=seed,
                        batch_size=self.batch_size * 4,
                    )  # fmt: skip
                    self.counts.forward_passes_computed += getattr(mlm, "forward_passes", 0) - passes
                    advance(len(batch))
                    yield {r: list(neighbours) for r, neighbours in zip(batch, texts, strict=True)}
        notes = self.notes[mlm.name]
        notes.fallbacks.extend(f for f in dict.fromkeys(getattr(mlm, "fallbacks", ())) if f not in notes.fallbacks)

    # ---- token lengths (tokenizer only) ---------------------------------------------------------------
    def _token_lengths(self, target: Any, requests: list[TokenLengthRequest]) -> dict[Any, int]:
        identity = [target.tokenizer_fingerprint]

        def compute(misses: list[TokenLengthRequest]) -> Batches:
            for start in range(0, len(misses), 1024):
                yield {r: len(target.encode(r.text)) for r in misses[start : start + 1024]}

        return self._read_through(requests, lambda r: identity, compute)

    # ---- token counts over a reference corpus -------------------------------------------------------
    def _corpus(self, request: TokenCountsRequest) -> Path:
        path = Path(request.corpus) if request.corpus else self.default_corpus
        if path is None:
            raise MiakitError("No reference corpus given for token frequencies and no default is set.")
        if not path.is_file():
            raise MiakitError(f"Reference corpus '{path}' does not exist.")
        return path

    def _token_counts(self, target: Any, requests: list[TokenCountsRequest]) -> dict[Any, np.ndarray]:
        def identity(r: TokenCountsRequest) -> list[Any]:
            return [target.tokenizer_fingerprint, target.vocab_size, file_sha256_memo(self._corpus(r))]

        return self._read_through(requests, identity, partial(self._compute_counts, target))

    def _compute_counts(self, target: Any, misses: list[TokenCountsRequest]) -> Batches:
        for r in misses:
            path = self._corpus(r)
            texts = read_corpus_texts(path)
            with _progress(self.progress, f"token frequencies of {path.name}", 1, "corpus") as advance:
                counts = target.count_tokens(texts)
                advance(1)
            yield {r: counts}


def map_batches(target: Any, compute: Callable[[Any], Any], batches: Sequence[Any]) -> Iterator[tuple[int, Any]]:
    """``(index, compute(batch))`` for every batch: in order for a target whose ``concurrency`` is 1 (a local
    model), else up to ``concurrency`` batches in flight at once (a server), each yielded as it completes, so
    that the engine stores every response as it arrives."""
    width = int(target.concurrency)
    if width <= 1 or len(batches) <= 1:
        for index, batch in enumerate(batches):
            yield index, compute(batch)
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="miakit-requests")
    pending: dict[Any, int] = {}
    upcoming = iter(range(len(batches)))
    try:
        for index in upcoming:
            pending[pool.submit(compute, batches[index])] = index
            if len(pending) >= width:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                result = future.result()
                following = next(upcoming, None)
                if following is not None:
                    pending[pool.submit(compute, batches[following])] = following
                yield index, result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _short(name: str) -> str:
    return name if len(name) <= 40 else "…" + name[-39:]


class _progress:
    """A rich progress bar on a terminal, plain progress lines on stderr elsewhere, or nothing; yields an
    ``advance(n)`` callable."""

    def __init__(self, enabled: bool, description: str, total: int, unit: str = "tokens") -> None:
        self.enabled, self.description, self.total, self.unit = enabled, description, total, unit
        self._bar: Any = None
        self._plain: PlainProgress | None = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        if not interactive():
            self._plain = PlainProgress(self.description, self.total, self.unit)
            return self._plain.advance
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(self.unit),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.start()
        task = self._bar.add_task(self.description, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._plain is not None and exc_type is None:
            self._plain.finish()
