"""A model behind an OpenAI-compatible HTTP API (vLLM, TGI, llama.cpp, hosted APIs) as an audit target.

At start the target negotiates what the server offers and records it (``describe()``): prompt-token log-probs
with top-k (``/v1/completions`` with ``echo``, or vLLM's ``prompt_logprobs``), generated-token log-probs, the
server's tokenizer (``/tokenize``), and how many top log-probs it returns. A server without ``/v1/completions``
(a chat-only API) generates through ``/v1/chat/completions``: each prompt is the user's message after a system
instruction to continue it (``CHAT_INSTRUCTION``, or the user's own), recorded in the manifest and part of the
target's identity, since the same model answers differently under another framing. A server whose echoed log-probs are
not aligned with its prompt tokens (a known llama.cpp defect shifts them by one) is refused. Its identity is
the served name plus the log-probs (or greedy continuation) of a fixed probe text, so a different model behind
the same name is detected and its stored signals are not reused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from miakit.errors import MiakitError
from miakit.signals.generation import Generation
from miakit.signals.requests import GenerationRequest
from miakit.targets.capability import Capability
from miakit.targets.fingerprint import read_json_memo, write_json_memo
from miakit.targets.http import HTTPClient, Ledger, ServerError

PROBE = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity."
)
IDENTITIES = "api-identities.json"
DRIFT_TOLERANCE = 1e-3  # largest probe log-prob difference still read as the same model
ALIGNMENT_TOLERANCE = 0.05  # echoed vs generated log-prob of the same token after the same prefix
NAN_FIELDS = ("mu", "sigma", "entropy", "renyi_05", "renyi_2")
ENDPOINTS = ("auto", "completions", "chat")
CHAT_INSTRUCTION = (
    "Continue the text in the user's message exactly where it stops. Reply with the continuation only: no "
    "preamble, no quotation marks, no comment."
)


@dataclass
class Negotiated:
    """What the server was found to offer (recorded in the manifest)."""

    served_model: str = ""
    tokenize: bool = False
    prompt_logprobs: str | None = None  # "prompt_logprobs" (vLLM, ranks exact), "echo", or None
    top_logprobs: int = 0  # how many top log-probs per position the server returns
    echo_max_tokens: int = 0  # 0 where the server scores a prompt without generating, else 1
    generation_logprobs: bool = False
    top_k_sampling: bool = False  # accepts a ``top_k`` sampling parameter (vLLM, TGI)
    token_ids_in_output: bool = False  # ``return_tokens_as_token_ids`` (vLLM)
    endpoint: str = ""  # where generations come from: "completions", or "chat" (``/v1/chat/completions``)
    chat_instruction: str | None = None  # the system message before each prompt on the chat endpoint
    max_length: int = 0
    alignment: str = "unchecked"  # "aligned", "refused: ...", or "unchecked: why"
    notes: list[str] = field(default_factory=list)


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``openai:BASE_URL#MODEL`` -> (base URL, model name)."""
    body = spec.removeprefix("openai:")
    base, sep, model = body.partition("#")
    if not sep or not model or not base.startswith(("http://", "https://")):
        raise MiakitError(
            f"'{spec}' is not an API target: write openai:BASE_URL#MODEL, e.g. "
            "openai:http://127.0.0.1:8000/v1#my-model (or pass --api-base and --api-model)."
        )
    return base.rstrip("/"), model


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class OpenAICompatibleTarget:
    """Token statistics from echoed prompt log-probs and generations from ``/v1/completions`` (or, on a
    chat-only server, ``/v1/chat/completions``)."""

    kind = "openai_api"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout: float = 600.0,
        max_retries: int = 6,
        top_logprobs: int | None = None,
        max_length: int | None = None,
        price_prompt: float | None = None,
        price_completion: float | None = None,
        endpoint: str = "auto",
        chat_instruction: str | None = None,
        client: HTTPClient | None = None,
    ) -> None:
        if concurrency < 1:
            raise MiakitError(f"--api-concurrency must be at least 1 (got {concurrency}).")
        if endpoint not in ENDPOINTS:
            raise MiakitError(f"--api-endpoint must be one of {', '.join(ENDPOINTS)} (got '{endpoint}').")
        key = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise MiakitError(
                    f"--api-key-env names the environment variable {api_key_env}, which is not set (or empty)."
                )
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.name = f"{self.base_url}#{model}"
        self.concurrency = concurrency
        self.api_key_env = api_key_env
        self.endpoint = endpoint
        self.chat_instruction = CHAT_INSTRUCTION if chat_instruction is None else chat_instruction
        ledger = Ledger(price_prompt=price_prompt, price_completion=price_completion)
        self.client = client or HTTPClient(
            self.base_url, api_key=key, timeout=timeout, max_retries=max_retries, concurrency=concurrency, ledger=ledger
        )
        self.ledger = self.client.ledger
        self._tokens: dict[tuple[str, bool], list[int]] = {}
        self.vocab_size = 0
        self.drift: str | None = None
        self.negotiated = Negotiated()
        self._pieces: dict[int, str] = {}  # token id -> its text, from /detokenize
        self.client.probing = True
        try:
            self._negotiate(top_logprobs, max_length)
        finally:
            self.client.probing = False
        self.capabilities = self._capabilities()
        self._identify()

    # ---- start-up ------------------------------------------------------------------------------------
    def _server_root(self) -> str:
        parts = urlsplit(self.base_url)
        path = parts.path.rstrip("/").removesuffix("/v1")
        return f"{parts.scheme}://{parts.netloc}{path}"

    def _negotiate(self, top_logprobs: int | None, max_length: int | None) -> None:
        n = self.negotiated
        try:
            listing = self.client.get("models")
        except ServerError as e:
            raise MiakitError(f"Cannot reach the API target {self.base_url}: {e}") from None
        cards = {str(c.get("id")): c for c in listing.get("data", []) if isinstance(c, dict)}
        if self.model_name not in cards:
            served = ", ".join(sorted(cards)) or "none"
            raise MiakitError(
                f"The server at {self.base_url} does not serve '{self.model_name}'; it serves: {served}. "
                "Name one after '#' in --model openai:URL#NAME (or --api-model)."
            )
        card = cards[self.model_name]
        n.served_model = str(card.get("root") or card.get("id"))
        n.max_length = int(max_length or card.get("max_model_len") or 0)
        probe_ids = self._try_tokenize(PROBE)
        n.tokenize = probe_ids is not None
        if not n.max_length:
            n.max_length = 2048
            n.notes.append("the server did not say its context length: 2048 assumed (set --max-length)")
        self._negotiate_generation()
        if n.endpoint == "completions":  # prompt-token log-probs come from /v1/completions only
            if n.tokenize:
                self._negotiate_logprobs(probe_ids, top_logprobs)
            else:
                n.notes.append("no /tokenize endpoint: prompt-token log-probs need the server's token ids")
        if n.prompt_logprobs:
            self._check_alignment(probe_ids)
        else:
            n.alignment = "not applicable: no prompt log-probs"

    def _try_tokenize(self, text: str) -> list[int] | None:
        try:
            return self.encode(text)
        except ServerError as e:
            if e.status in (400, 404, 405, 501) or e.status is None:
                return None
            raise

    def _echo(self, prompts: list[list[int]], k: int, mode: str, max_tokens: int) -> Any:
        payload: dict[str, Any] = {
            "model": self.model_name,
            "prompt": prompts,
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        if mode == "prompt_logprobs":  # echo too: vLLM scores a prompt without generating only with echo
            payload.update(echo=True, prompt_logprobs=k)
        else:
            payload.update(echo=True, logprobs=k)
        return self.client.post("completions", payload)

    def _negotiate_logprobs(self, probe_ids: list[int], wanted: int | None) -> None:
        n = self.negotiated
        for mode in ("prompt_logprobs", "echo"):
            for max_tokens in (0, 1):
                for k in [wanted] if wanted is not None else [20, 5, 1]:
                    try:
                        answer = self._echo([probe_ids], k, mode, max_tokens)
                        rows = self._prompt_rows(answer, [probe_ids], mode)
                    except (ServerError, ValueError, KeyError, TypeError, IndexError):
                        continue
                    n.prompt_logprobs, n.top_logprobs, n.echo_max_tokens = mode, k, max_tokens
                    self._probe_rows = rows[0]
                    return
        n.notes.append("the server returned no prompt-token log-probs (echo with logprobs, prompt_logprobs)")

    def _negotiate_generation(self) -> None:
        """Where generations come from: ``/v1/completions`` where the server answers it (and ``--api-endpoint``
        allows), else ``/v1/chat/completions``; with which options (token ids, log-probs, ``top_k``)."""
        n = self.negotiated
        if self.endpoint != "chat":
            payload = {"model": self.model_name, "prompt": PROBE, "max_tokens": 4, "temperature": 0.0, "logprobs": 1}
            if self._probe_generation("completions", payload, lambda answer: answer["choices"][0]):
                n.endpoint = "completions"
                return
            if self.endpoint == "completions":
                raise MiakitError(
                    f"The server at {self.base_url} answers no /v1/completions request for '{self.model_name}' "
                    "(--api-endpoint completions); --api-endpoint auto tries /v1/chat/completions too."
                )
        payload = {"model": self.model_name, "messages": self._messages(PROBE), "max_tokens": 4, "temperature": 0.0}
        payload.update(logprobs=True, top_logprobs=1)
        if self._probe_generation("chat/completions", payload, lambda answer: _chat_choice(answer["choices"][0])):
            n.endpoint, n.chat_instruction = "chat", self.chat_instruction
            why = "--api-endpoint chat" if self.endpoint == "chat" else "the server answers no /v1/completions"
            n.notes.append(
                f"generations come from /v1/chat/completions ({why}): each prompt is the user's message after the "
                "system instruction recorded as chat_instruction, so continuation attacks measure the chat model's "
                "answers, not a raw continuation; no prompt-token log-probs"
            )
            return
        endpoints = "/v1/chat/completions" if self.endpoint == "chat" else "/v1/completions or /v1/chat/completions"
        raise MiakitError(f"The server at {self.base_url} answers no {endpoints} request for '{self.model_name}'.")

    def _probe_generation(self, path: str, payload: dict[str, Any], first_choice: Any) -> bool:
        """Generate the probe's greedy continuation with the richest options the endpoint accepts; record them."""
        n = self.negotiated
        for extra in ({"return_tokens_as_token_ids": True, "top_k": 1}, {"top_k": 1}, {}):
            try:
                choice = first_choice(self.client.post(path, {**payload, **extra}))
            except (ServerError, KeyError, IndexError, TypeError):
                continue
            logprobs = choice.get("logprobs") or {}
            n.generation_logprobs = isinstance(logprobs.get("token_logprobs"), list)
            n.top_k_sampling = "top_k" in extra
            tokens = logprobs.get("tokens") or []
            n.token_ids_in_output = bool(tokens) and all(str(t).startswith("token_id:") for t in tokens)
            self._probe_greedy = str(choice.get("text", ""))
            return True
        return False

    def _messages(self, prompt: str) -> list[dict[str, str]]:
        """A prompt as a chat: the continuation instruction (unless empty) as the system message, then the prompt
        as the user's."""
        system = [{"role": "system", "content": self.chat_instruction}] if self.chat_instruction else []
        return [*system, {"role": "user", "content": prompt}]

    def _check_alignment(self, probe_ids: list[int]) -> None:
        """Echoed log-probs at position i must be those of a one-token continuation of the first i tokens."""
        n = self.negotiated
        rows = self._probe_rows
        checked, worst = 0, 0.0
        positions = [i for i in range(2, len(probe_ids)) if i % 3 == 2][:6]
        for i in positions:
            payload = {
                "model": self.model_name,
                "prompt": [probe_ids[:i]],
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": max(1, n.top_logprobs),
            }
            try:
                choice = self.client.post("completions", payload)["choices"][0]
                generated = (choice["logprobs"]["top_logprobs"] or [None])[0]
            except (ServerError, KeyError, IndexError, TypeError):
                n.alignment = "unchecked: the server gives no log-probs of generated tokens"
                return
            if not isinstance(generated, dict) or not generated:
                continue
            top_generated = max(generated.values())
            echoed_top = rows["max_logprob"][i - 1]
            worst = max(worst, abs(top_generated - echoed_top))
            checked += 1
        if not checked:
            n.alignment = "unchecked: no position could be compared"
        elif worst > ALIGNMENT_TOLERANCE:
            n.alignment = f"refused: echoed and generated top log-probs differ by up to {worst:.3f}"
            raise MiakitError(
                f"The server at {self.base_url} returns prompt log-probs that are not aligned with the prompt's "
                f"tokens: after the same {checked} prefixes, its echoed top log-probs and those of a one-token "
                f"continuation differ by up to {worst:.3f} (tolerance {ALIGNMENT_TOLERANCE}). Such a server "
                "(e.g. llama-cpp-python without a BOS token) shifts log-probs by one position; every likelihood "
                "score would be wrong. Fix the server or audit it with text-only attacks."
            )
        else:
            n.alignment = f"aligned ({checked} positions, largest difference {worst:.1e})"

    def _capabilities(self) -> frozenset[Capability]:
        caps = {Capability.GENERATION}
        if self.negotiated.prompt_logprobs:
            caps.add(Capability.TOPK_LOGPROBS)
        if self.negotiated.tokenize and self.negotiated.endpoint == "completions":
            caps.add(Capability.TOKEN_IDS)
        return frozenset(caps)

    def _identify(self) -> None:
        """Fingerprints from the served name and the probe's log-probs (or greedy continuation); a name whose
        probe no longer matches any stored identity is a changed model: new fingerprint, and a note."""
        n = self.negotiated
        probe_values = [float(v) for v in self._probe_rows["logprob"]] if n.prompt_logprobs else None
        tokens = [self._try_tokenize(t) for t in (PROBE, "Hello, world!", " 0123 ü")] if n.tokenize else None
        self.tokenizer_fingerprint = _sha(["api-tokenizer", n.served_model, tokens])
        probe = {"logprob": probe_values, "greedy": self._probe_greedy, "tokens": tokens}
        # Chat framing is part of the identity: the same model answers differently under another instruction.
        framing = ["chat", self.chat_instruction] if n.endpoint == "chat" else []
        memo_key = self.model_name + (f" (chat {_sha(framing)[:12]})" if framing else "")
        known = read_json_memo(IDENTITIES).get(memo_key)
        known = known if isinstance(known, list) else []
        for entry in known:
            if isinstance(entry, dict) and _same_probe(entry.get("probe"), probe):
                self.fingerprint = str(entry["fingerprint"])
                return
        rounded = None if probe_values is None else [round(v, 4) for v in probe_values]
        self.fingerprint = _sha(["api", self.model_name, n.served_model, rounded, probe["greedy"], tokens, *framing])
        if known:
            self.drift = (
                f"The model served as '{self.model_name}' changed since an earlier run: its log-probs of a fixed "
                "probe text (or its greedy continuation) differ, so signals stored for that name are not reused."
            )
        write_json_memo(IDENTITIES, memo_key, [*known, {"probe": probe, "fingerprint": self.fingerprint}][-8:])

    # ---- the Target protocol ---------------------------------------------------------------------------
    @property
    def tokenizes(self) -> bool:
        """Whether the server gives token ids (``/tokenize``); without them only generation from text is served."""
        return self.negotiated.tokenize

    @property
    def max_length(self) -> int:
        return self.negotiated.max_length - self.negotiated.echo_max_tokens

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.kind,
            "base_url": self.base_url,
            "model": self.model_name,
            "fingerprint": self.fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "max_length": self.max_length,
            "capabilities": sorted(c.value for c in self.capabilities),
            "negotiated": asdict(self.negotiated),
            "api_key_env": self.api_key_env,
            "drift": self.drift,
            "ledger": self.ledger.as_dict(),
        }

    def release(self) -> None:
        """Nothing to free: the weights live on the server."""

    def encode(self, text: str) -> list[int]:
        return self._tokenize(text, True)

    def encode_plain(self, text: str) -> list[int]:
        return self._tokenize(text, False)

    def _tokenize(self, text: str, special: bool, *, remember: bool = True) -> list[int]:
        key = (text, special)
        if key in self._tokens:
            return list(self._tokens[key])
        payload = {"model": self.model_name, "prompt": text, "add_special_tokens": special}
        answer = self.client.post(f"{self._server_root()}/tokenize", payload)
        ids = [int(t) for t in answer["tokens"]]
        if remember:
            self._tokens[key] = ids
        return list(ids)

    def encode_pair(self, context: str, text: str) -> tuple[list[int], list[int]]:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            text = context[-n_spaces:] + text
            context = context[:-n_spaces]
        whole, ctx = self.encode(context + text), self.encode(context)
        return whole[: len(ctx)], whole[len(ctx) :]

    def bos_id(self) -> int:
        raise MiakitError("--prepend-bos is not available for an API target (its BOS token is not known).")

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Token occurrences over ``texts``, tokenised by the server (``concurrency`` requests at once); the
        vocabulary size is not known, so the array ends at the largest id seen."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            ids = list(pool.map(lambda text: self._tokenize(text, False, remember=False), texts))
        size = max([self.vocab_size, *(max(x) + 1 for x in ids if x)])
        counts = np.zeros(size, dtype=np.int64)
        for x in ids:
            np.add.at(counts, np.asarray(x, dtype=np.int64), 1)
        return counts

    def token_stats(self, batch: Sequence[tuple[Sequence[int], int]], topk: int = 0) -> list[dict[str, np.ndarray]]:
        """Echoed log-probs of every prompt in one request: the actual token's log-prob, the top log-prob
        (``max_logprob``, and ``renyi_inf`` = its negative), the rank where the top-k shows it (else NaN);
        full-distribution summaries (mu, sigma, entropy, Rényi 0.5 and 2) are NaN. ``topk`` > 0: the server is
        asked for exactly ``topk`` top log-probs and the summaries are those of the top-k approximation."""
        n = self.negotiated
        if not n.prompt_logprobs:
            raise MiakitError(f"The server at {self.base_url} gives no prompt-token log-probs.")
        if topk > n.top_logprobs:
            raise MiakitError(
                f"The top-{topk} approximation needs {topk} top log-probs per position; the server at "
                f"{self.base_url} was negotiated to show {n.top_logprobs} (--api-top-logprobs). Ask for "
                f"approx=topk with topk={n.top_logprobs} or fewer."
            )
        prompts = [[int(t) for t in ids] for ids, _ in batch]
        # vLLM's prompt_logprobs give the prompt token's exact rank whatever k: the top-1 alone completes the full
        # statistics (a tenth of the bytes of k = 20); echo mode knows a rank only within the top k it shows.
        k = topk or (1 if n.prompt_logprobs == "prompt_logprobs" else n.top_logprobs)
        answer = self._echo(prompts, k, n.prompt_logprobs, n.echo_max_tokens)
        rows = self._prompt_rows(answer, prompts, n.prompt_logprobs, topk)
        out = []
        for (ids, first), row in zip(batch, rows, strict=True):
            start = max(1, first) - 1  # rows hold positions 1..len-1
            stats = {name: values[start:] for name, values in row.items()}
            stats["token_ids"] = np.asarray(ids[max(1, first) :], dtype=np.int32)
            out.append(stats)
        return out

    def token_stats_prefixed(
        self, prefix: Sequence[int], batch: Sequence[Sequence[int]], topk: int = 0
    ) -> list[dict[str, np.ndarray]]:
        raise NotImplementedError("a server shares no key/value cache with its client")

    def _prompt_rows(
        self, answer: Any, prompts: list[list[int]], mode: str, topk: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """Per prompt, arrays over positions 1..len-1: logprob, max_logprob, rank, renyi_inf and NaN fields (the
        top-k summaries where ``topk`` > 0)."""
        choices = sorted(answer["choices"], key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise ValueError(f"{len(choices)} choices for {len(prompts)} prompts")
        return [
            _vllm_row(choice["prompt_logprobs"], ids, topk)
            if mode == "prompt_logprobs"
            else _echo_row(choice["logprobs"], len(ids), topk or self.negotiated.top_logprobs, topk > 0)
            for choice, ids in zip(choices, prompts, strict=True)
        ]

    def next_tokens(self, batch: Sequence[Sequence[int]]) -> list[Any]:
        """Per text (token ids), the greedy next token after every prefix ``ids[:i]``, i = 1..n-1: one
        ``/v1/completions`` request per text with every prefix (as token ids) as its prompts, ``max_tokens`` 1,
        temperature 0; the generated token's id where the server returns ids (``return_tokens_as_token_ids``),
        else -1. Tokens are decoded one by one by the server (``/detokenize``) where it has that endpoint; a
        generated token whose id is unknown is the choice's text."""
        from miakit.signals.next_tokens import NextTokens

        if Capability.TOKEN_IDS not in self.capabilities:
            raise MiakitError(
                f"Greedy next tokens need token-id prompts on /v1/completions; the server at {self.base_url} has "
                f"{'no /tokenize endpoint' if not self.negotiated.tokenize else 'only /v1/chat/completions'}."
            )
        out = []
        for ids in batch:
            ids = [int(t) for t in ids]
            payload: dict[str, Any] = {
                "model": self.model_name,
                "prompt": [ids[:i] for i in range(1, len(ids))],
                "max_tokens": 1,
                "temperature": 0.0,
            }
            if self.negotiated.top_k_sampling:
                payload["top_k"] = 1  # ties broken as greedy decoding does, not sampled
            if self.negotiated.token_ids_in_output:
                payload.update(logprobs=1, return_tokens_as_token_ids=True)
            choices = self._choices(self.client.post("completions", payload), len(ids) - 1)
            predicted, texts = [], []
            for choice in choices:
                tokens = (choice.get("logprobs") or {}).get("tokens") or []
                token = str(tokens[0]) if tokens else ""
                predicted.append(int(token.removeprefix("token_id:")) if token.startswith("token_id:") else -1)
                texts.append(str(choice.get("text", "")))
            pieces = self.decode_pieces([*ids[1:], *(t for t in predicted if t >= 0)])
            true_pieces = pieces[: len(ids) - 1]
            known = iter(pieces[len(ids) - 1 :])
            predicted_pieces = [next(known) if t >= 0 else text for t, text in zip(predicted, texts, strict=True)]
            out.append(NextTokens(tuple(ids), tuple(predicted), tuple(true_pieces), tuple(predicted_pieces)))
        return out

    def decode_pieces(self, ids: Sequence[int]) -> list[str]:
        """Each token decoded on its own by the server's ``/detokenize`` (one request per distinct id, kept)."""
        for token in dict.fromkeys(int(t) for t in ids):
            if token not in self._pieces:
                payload = {"model": self.model_name, "tokens": [token]}
                try:
                    answer = self.client.post(f"{self._server_root()}/detokenize", payload)
                except ServerError as e:
                    raise MiakitError(
                        f"The server at {self.base_url} does not decode token ids (/detokenize: {e}); PETAL needs "
                        "the text of each token."
                    ) from None
                self._pieces[token] = str(answer.get("prompt", answer.get("text", "")))
        return [self._pieces[int(t)] for t in ids]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One ``/v1/completions`` request per group of requests sharing their sampling settings; on the chat
        endpoint, which takes one conversation per request, one request per prompt."""
        chat = self.negotiated.endpoint == "chat"
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[(r.n, r.temperature, r.top_k, r.top_p, r.max_new_tokens, 0 if r.greedy else r.seed)].append(i)
        results: list[Generation | None] = [None] * len(requests)
        for (n, temperature, top_k, top_p, max_new, seed), indices in groups.items():
            asked = 1 if temperature == 0 else n  # greedy continuations are all the same: ask for one
            payload: dict[str, Any] = {
                "model": self.model_name,
                "n": asked,
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_new,
                "seed": seed,
            }
            if top_k:
                if not self.negotiated.top_k_sampling:
                    raise MiakitError(f"The server at {self.base_url} takes no top_k sampling parameter.")
                payload["top_k"] = top_k
            if self.negotiated.generation_logprobs:
                payload.update({"logprobs": True, "top_logprobs": 1} if chat else {"logprobs": 1})
            if self.negotiated.token_ids_in_output:
                payload["return_tokens_as_token_ids"] = True
            if chat:
                per_prompt = [self._chat(payload, requests[i].prompt, asked) for i in indices]
            else:
                payload["prompt"] = [self._generation_prompt(requests[i]) for i in indices]
                choices = self._choices(self.client.post("completions", payload), asked * len(indices))
                per_prompt = [choices[slot * asked : (slot + 1) * asked] for slot in range(len(indices))]
            for choices, i in zip(per_prompt, indices, strict=True):
                results[i] = self._generation(choices * (n // asked))
        return [g for g in results if g is not None]

    def _chat(self, payload: dict[str, Any], prompt: str, asked: int) -> list[dict[str, Any]]:
        """``asked`` answers to one prompt from ``/v1/chat/completions``, in the completions endpoint's form."""
        answer = self.client.post("chat/completions", {**payload, "messages": self._messages(prompt)})
        return [_chat_choice(c) for c in self._choices(answer, asked)]

    def _choices(self, answer: Any, expected: int) -> list[dict[str, Any]]:
        choices = sorted(answer["choices"], key=lambda c: c.get("index", 0))
        if len(choices) != expected:
            raise ServerError(f"The server at {self.base_url} returned {len(choices)} choices for {expected}.")
        return choices

    def _generation_prompt(self, request: GenerationRequest) -> str | list[int]:
        """The prompt as token ids cut from the left to leave room for the continuation (as a local model
        does), where the server tokenizes; else the text."""
        if not self.negotiated.tokenize:
            return request.prompt
        budget = max(1, self.negotiated.max_length - request.max_new_tokens)
        return self.encode(request.prompt)[-budget:]

    def _generation(self, choices: list[dict[str, Any]]) -> Generation:
        texts, ids, logprobs = [], [], []
        for choice in choices:
            text = str(choice.get("text", ""))
            lp = choice.get("logprobs") or {}
            tokens, values = lp.get("tokens"), lp.get("token_logprobs")
            # Stopped with no stop strings asked: at an end-of-sequence token, which servers list with the
            # generated tokens (vLLM does) but not in the text; it is not part of the continuation.
            at_eos = choice.get("finish_reason") == "stop"
            if self.negotiated.token_ids_in_output and isinstance(tokens, list):
                token_ids = [int(str(t).removeprefix("token_id:")) for t in tokens]
                if at_eos and token_ids:
                    token_ids, values = token_ids[:-1], values[:-1] if isinstance(values, list) else values
            elif self.negotiated.tokenize:
                token_ids = self.encode_plain(text)
            else:
                token_ids = []
            if isinstance(values, list) and at_eos and len(values) == len(token_ids) + 1:
                values = values[:-1]
            if isinstance(values, list) and len(values) == len(token_ids):
                logprobs.append(tuple(float(v) for v in values))
            else:
                logprobs.append(None)
            texts.append(text)
            ids.append(tuple(token_ids))
        complete = all(x is not None for x in logprobs)
        return Generation(tuple(texts), tuple(ids), tuple(logprobs) if complete else None)  # type: ignore[arg-type]


def _chat_choice(choice: dict[str, Any]) -> dict[str, Any]:
    """A chat completion's choice in the completions endpoint's form: ``text``, ``logprobs`` {tokens,
    token_logprobs}, ``finish_reason``, ``index``."""
    content = choice["message"].get("content")
    entries = (choice.get("logprobs") or {}).get("content")
    logprobs = None
    if isinstance(entries, list):
        logprobs = {"tokens": [e.get("token") for e in entries], "token_logprobs": [e.get("logprob") for e in entries]}
    return {
        "index": choice.get("index", 0),
        "text": "" if content is None else str(content),
        "logprobs": logprobs,
        "finish_reason": choice.get("finish_reason"),
    }


def _vllm_row(entries: list[Any], ids: list[int], topk: int = 0) -> dict[str, np.ndarray]:
    """vLLM's ``prompt_logprobs``: per position (the first None) {token id: {logprob, rank, decoded_token}}, the
    prompt's own token among them with its exact rank over the whole vocabulary. With ``topk`` the entries are
    the top ``topk`` tokens and the prompt's own: the set the top-k summaries renormalise over."""
    if len(entries) < len(ids):
        raise ValueError("prompt log-probs do not cover the prompt")
    actual, best, rank, shown = [], [], [], []
    for entry, token in zip(entries[1 : len(ids)], ids[1:], strict=True):
        mine = entry[str(token)]
        actual.append(float(mine["logprob"]))
        rank.append(float(mine.get("rank") or math.nan))
        top = [float(v["logprob"]) for v in entry.values() if v.get("rank") == 1]
        best.append(top[0] if top else math.nan)
        if topk:
            shown.append([float(v["logprob"]) for v in entry.values()])
    return _row(np.asarray(actual), np.asarray(best), np.asarray(rank), shown if topk else None)


def _echo_row(logprobs: dict[str, Any], length: int, k: int, summarise: bool = False) -> dict[str, np.ndarray]:
    """OpenAI's echoed ``logprobs`` (token_logprobs, the first None; top_logprobs {token text: logprob}): the rank
    is known where fewer than k shown tokens are more likely. ``summarise``: the top-k summaries over the shown
    tokens and the actual one (found among them by its text and log-prob)."""
    token_logprobs = logprobs["token_logprobs"][1:length]
    top_lists = (logprobs.get("top_logprobs") or [None] * length)[1:length]
    tokens = (logprobs.get("tokens") or [None] * length)[1:length]
    if len(token_logprobs) != length - 1:
        raise ValueError("echoed log-probs do not cover the prompt")
    actual = np.asarray([math.nan if v is None else float(v) for v in token_logprobs], dtype=np.float64)
    best = np.full(len(actual), math.nan)
    rank = np.full(len(actual), math.nan)
    shown: list[list[float]] = []
    for j, top_map in enumerate(top_lists):
        values = np.asarray([float(v) for v in top_map.values()]) if isinstance(top_map, dict) else np.zeros(0)
        if values.size:
            best[j] = values.max()
            above = int((values > actual[j] + 1e-6).sum())
            if above < k:
                rank[j] = above + 1
        if summarise:
            mine = top_map.get(tokens[j]) if isinstance(top_map, dict) and tokens[j] is not None else None
            listed = mine is not None and abs(float(mine) - actual[j]) <= 1e-6
            shown.append([*values.tolist(), *([] if listed else [actual[j]])])
    return _row(actual, best, rank, shown if summarise else None)


def _row(
    actual: np.ndarray, best: np.ndarray, rank: np.ndarray, shown: list[list[float]] | None = None
) -> dict[str, np.ndarray]:
    """The fields of one prompt; ``shown`` (per position, the log-probs of the top-k tokens and the actual one)
    gives the top-k summaries, else the full-distribution summaries are NaN."""
    row = {"logprob": actual, "max_logprob": best, "rank": rank, "renyi_inf": -best}
    for name in NAN_FIELDS:
        row[name] = np.full(len(actual), math.nan)
    if shown is not None and len(shown):
        import torch

        from miakit.targets.logit_stats import topk_summaries

        width = max(len(v) for v in shown)
        padded = np.full((len(shown), width), math.nan)
        for j, values in enumerate(shown):
            padded[j, : len(values)] = values
        row.update({k: v.numpy() for k, v in topk_summaries(torch.from_numpy(padded)).items()})
    return {k: np.asarray(v, dtype=np.float32) for k, v in row.items()}


def _same_probe(stored: Any, probe: dict[str, Any]) -> bool:
    if not isinstance(stored, dict) or stored.get("tokens") != probe["tokens"]:
        return False
    a, b = stored.get("logprob"), probe["logprob"]
    if a is None or b is None:
        return a is None and b is None and stored.get("greedy") == probe["greedy"]
    if len(a) != len(b):
        return False
    return all(abs(x - y) <= DRIFT_TOLERANCE for x, y in zip(a, b, strict=True))
