"""HTTP transport for targets behind a server: retries with backoff, a ledger of what was asked and paid.

Retried: 408, 409, 429 and 5xx answers, timeouts, dropped connections and bodies that are not the JSON the
server promised (a truncated answer), with exponential backoff and full jitter, honouring ``Retry-After``. Not
retried: other 4xx answers (the request itself is wrong; retrying would pay again for the same refusal). The API
key travels in the ``Authorization`` header only and is scrubbed from every message this module writes.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from miakit.errors import MiakitError

RETRIED_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class Ledger:
    """Requests sent (every attempt), retries and their reasons, failures, tokens the server counted, cost."""

    requests: int = 0
    retries: int = 0
    failures: int = 0  # requests given up after the last retry, or refused by the server
    probes_refused: int = 0  # start-up probes the server refused (how negotiation learns what it lacks)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # wall time spent waiting on the server (overlapping requests counted once each)
    retry_reasons: dict[str, int] = field(default_factory=dict)
    price_prompt: float | None = None  # per 1,000 prompt tokens
    price_completion: float | None = None  # per 1,000 completion tokens

    @property
    def cost(self) -> float | None:
        if self.price_prompt is None and self.price_completion is None:
            return None
        return (
            self.prompt_tokens * (self.price_prompt or 0.0) + self.completion_tokens * (self.price_completion or 0.0)
        ) / 1000

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost"] = self.cost
        return out


class ServerError(MiakitError):
    """The server refused a request (not retried) or kept failing after every retry."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


class HTTPClient:
    """A thread-safe JSON client for one server: ``post`` and ``get`` with retries; counts go to ``ledger``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        concurrency: int = 8,
        ledger: Ledger | None = None,
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.Client(headers=headers, timeout=timeout, limits=limits)
        self.max_retries = max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.ledger = ledger or Ledger()
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.sleep = time.sleep  # replaced in tests that must not wait
        self.probing = False  # while True, refusals are counted as refused probes, not failures

    def close(self) -> None:
        self._client.close()

    def scrub(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        return text.replace(self._key, "***") if self._key else text

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        return self.request("POST", path, payload)

    def request(
        self, method: str, path: str, payload: dict[str, Any] | None = None, *, retries: int | None = None
    ) -> Any:
        """The decoded JSON answer; retried as the module says; ServerError when refused or out of retries."""
        url = self.url(path)
        limit = self.max_retries if retries is None else retries
        attempt = 0
        while True:
            attempt += 1
            reason, wait_hint = None, None
            started = time.perf_counter()
            try:
                response = self._client.request(method, url, json=payload)
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError as e:  # refused, reset or dropped connections, broken bodies
                reason = "connection" if not isinstance(e, httpx.DecodingError) else "bad body"
            finally:
                self._count(requests=1, seconds=time.perf_counter() - started)
            if reason is None:
                if response.status_code in RETRIED_STATUS:
                    reason = str(response.status_code)
                    wait_hint = retry_after_seconds(response.headers.get("retry-after"))
                elif response.status_code >= 400:
                    with self._lock:
                        if self.probing:
                            self.ledger.probes_refused += 1
                        else:
                            self.ledger.failures += 1
                    body = self.scrub(response.text[:2000])
                    raise ServerError(
                        f"The server at {self.base_url} refused {method} {path} with {response.status_code}: "
                        f"{_server_message(body)}",
                        response.status_code,
                        body,
                    )
                else:
                    try:
                        value = response.json()
                    except ValueError:
                        reason = "bad JSON"
                    else:
                        self._count_usage(value)
                        return value
            if attempt > limit:
                self._count(failures=1)
                raise ServerError(
                    f"The server at {self.base_url} did not answer {method} {path} after {attempt} attempts "
                    f"(last: {reason}). Check that it is running, or raise --api-retries / --api-timeout."
                )
            with self._lock:
                self.ledger.retries += 1
                self.ledger.retry_reasons[reason] = self.ledger.retry_reasons.get(reason, 0) + 1
                jitter = self._random.random()
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * jitter
            if wait_hint is not None:
                delay = max(delay, min(wait_hint, self.max_backoff * 4))
            self.sleep(delay)

    def _count(self, *, requests: int = 0, failures: int = 0, seconds: float = 0.0) -> None:
        with self._lock:
            self.ledger.requests += requests
            self.ledger.failures += failures
            self.ledger.seconds += seconds

    def _count_usage(self, value: Any) -> None:
        usage = value.get("usage") if isinstance(value, dict) else None
        if not isinstance(usage, dict):
            return
        with self._lock:
            self.ledger.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.ledger.completion_tokens += int(usage.get("completion_tokens") or 0)


def _server_message(body: str) -> str:
    """The ``message`` of an OpenAI-style error body, else the body's start."""
    try:
        value = json.loads(body)
    except ValueError:
        return body[:300] or "(empty body)"
    error = value.get("error", value) if isinstance(value, dict) else value
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error)[:500]
