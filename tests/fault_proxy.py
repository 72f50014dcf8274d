"""A fault-injecting HTTP reverse proxy on 127.0.0.1, between a client and a real (OpenAI-compatible) server.

    with FaultProxy(vllm_server.base_url) as proxy:
        proxy.push(status(429, retry_after=2))          # the next request only
        proxy.push(drop(), path="/v1/completions")      # the next request to that path only
        proxy.always(shift_logprobs)                    # every request from now on (until proxy.clear())
        client = httpx.Client(base_url=proxy.url)       # "http://127.0.0.1:PORT/v1"
        ...
        assert proxy.repeats() == {}                    # no request reached the server twice

Every request is handled by a thread of a stdlib ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) and forwarded with
one shared ``httpx.Client`` to the same path on the upstream server. The proxy buffers: it reads the whole
upstream response before answering, so a streamed (SSE) answer arrives in one piece.

Faults. Each request takes the first queued one-shot fault whose path matches (the queue keeps the others), then
every matching persistent fault, and applies them in that order. A fault acts before forwarding (it may answer
or drop the request itself, then nothing is forwarded and later faults are skipped) and/or after (it rewrites
the upstream response):

- ``delay(s)``: wait ``s`` seconds, then go on (forward, or the next fault).
- ``status(code, retry_after=None, forward=False)``: answer ``code`` with an OpenAI-style JSON error body and,
  when given, a ``Retry-After: <retry_after>`` header; nothing is forwarded. ``forward=True``: the request
  reaches the server first and its answer is replaced (the work was done, the client sees an error).
- ``drop(forward=False)``: close the connection without writing a byte of response (httpx raises
  ``RemoteProtocolError: Server disconnected without sending a response``). ``forward=True``: the server got
  and answered the request, the answer is lost.
- ``truncate(full_length=False, fraction=0.5)``: forward, then send only the first half of the body.
  ``full_length=False``: with ``Content-Length`` set to the half, a well-formed HTTP answer whose JSON does not
  parse. ``full_length=True``: ``Content-Length`` announces the whole body, half is sent and the connection is
  closed (httpx raises ``RemoteProtocolError: peer closed connection without sending complete message body``).
- ``shift_logprobs()``: forward, then in every choice of a JSON answer that has ``logprobs.token_logprobs``
  (``/v1/completions``), move ``token_logprobs`` and ``top_logprobs`` (and vLLM's ``prompt_logprobs`` when
  present) one position to the right: ``new[0] = None`` and ``new[i] = old[i - 1]`` for i >= 1; the last value
  falls off and the lists keep their length. ``tokens`` and ``text_offset`` stay. With ``echo`` the old ``[0]``
  was already null, so ``new[0]`` and ``new[1]`` are both null and position i carries the log-prob of token
  i - 1 given tokens < i - 1: ``top_logprobs[i]`` holds ``tokens[i - 1]``, not ``tokens[i]``.
  ``shift_logprobs(-1)`` shifts to the left instead (``new[i] = old[i + 1]`` for i >= 1, ``new[0]`` stays, the
  last is None): position i then reports the distribution that follows token i, the one the logits at position i
  give, which is what llama-cpp-python does without a BOS (``token_logprobs[i]`` from the logits at i instead of
  i - 1). Neither direction can reproduce llama-cpp's exact numbers (the logits at i evaluated at token i are not
  in a correct answer); both break the "top_logprobs[i] contains tokens[i] with token_logprobs[i]" invariant and
  every log-prob of a token.

``push`` and ``always`` take a fault or a fault factory called without arguments (``proxy.always(shift_logprobs)``).

Counters: ``received`` has one ``Record(method, path, body_sha256, ...)`` per request that reached the proxy,
``forwarded`` one per request sent to the server, in arrival order; ``repeats()`` lists the (method, path,
body_sha256) seen more than once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx

# Not forwarded either way: connection-level headers, and those the proxy recomputes.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
    }
)


@dataclass
class Reply:
    """What the proxy sends back: ``body`` with ``headers``; ``declared_length`` overrides Content-Length and
    ``close`` closes the connection after it (a body shorter than declared is then a truncated message)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    declared_length: int | None = None
    close: bool = False


DROP = object()  # a fault's before() result: close the connection, answer nothing


class Fault:
    """A fault: ``before`` may answer (a ``Reply``), drop (``DROP``) or let the request go on (None); ``after``
    may rewrite the upstream reply. ``label`` names it in the records."""

    label = "fault"

    def before(self, proxy: FaultProxy, method: str, path: str, body: bytes) -> Reply | object | None:
        return None

    def after(self, reply: Reply) -> Reply | object:
        return reply

    def __repr__(self) -> str:
        return self.label


class Delay(Fault):
    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.label = f"delay({self.seconds:g})"

    def before(self, proxy, method, path, body):
        proxy._closing.wait(self.seconds)  # a closing proxy does not sit out the delay
        return None


def _error_reply(code: int, retry_after: float | str | None) -> Reply:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    payload = {"error": {"message": f"injected fault: {code} {phrase}", "type": phrase, "param": None, "code": code}}
    headers = [("Content-Type", "application/json")]
    if retry_after is not None:
        value = f"{retry_after:g}" if isinstance(retry_after, (int, float)) else str(retry_after)
        headers.append(("Retry-After", value))
    return Reply(code, headers, json.dumps(payload).encode())


class Status(Fault):
    def __init__(self, code: int, retry_after: float | str | None = None, forward: bool = False):
        self.code, self.retry_after, self.forward = int(code), retry_after, forward
        extra = f", retry_after={retry_after!r}" if retry_after is not None else ""
        self.label = f"status({self.code}{extra}{', forward=True' if forward else ''})"

    def before(self, proxy, method, path, body):
        return None if self.forward else _error_reply(self.code, self.retry_after)

    def after(self, reply):
        return _error_reply(self.code, self.retry_after) if self.forward else reply


class Drop(Fault):
    def __init__(self, forward: bool = False):
        self.forward = forward
        self.label = "drop(forward=True)" if forward else "drop()"

    def before(self, proxy, method, path, body):
        return None if self.forward else DROP

    def after(self, reply):
        return DROP if self.forward else reply


class Truncate(Fault):
    def __init__(self, full_length: bool = False, fraction: float = 0.5):
        if not 0 <= fraction < 1:
            raise ValueError("fraction must be in [0, 1)")
        self.full_length, self.fraction = full_length, fraction
        self.label = f"truncate(full_length={full_length}, fraction={fraction:g})"

    def after(self, reply):
        if not isinstance(reply, Reply):
            return reply
        cut = reply.body[: int(len(reply.body) * self.fraction)]
        if self.full_length:
            return Reply(reply.status, reply.headers, cut, declared_length=len(reply.body), close=True)
        return Reply(reply.status, reply.headers, cut)


def _shift(values: list, direction: int) -> list:
    n = len(values)
    if n == 0:
        return values
    if direction > 0:
        return [None, *values[: n - 1]]
    return [values[0], *values[2:], None] if n > 1 else list(values)


class ShiftLogprobs(Fault):
    FIELDS = ("token_logprobs", "top_logprobs")

    def __init__(self, direction: int = 1, *, echo_only: bool = False):
        if direction not in (1, -1):
            raise ValueError("direction must be 1 (right) or -1 (left)")
        self.direction = direction
        self.echo_only = echo_only  # shift echoed prompt log-probs only, as llama-cpp-python does
        self.label = f"shift_logprobs({direction})"
        self._request = threading.local()

    def before(self, proxy, method, path, body):
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        self._request.echo = isinstance(payload, dict) and bool(payload.get("echo"))
        return None

    def after(self, reply):
        if not isinstance(reply, Reply) or reply.status != 200:
            return reply
        if self.echo_only and not getattr(self._request, "echo", False):
            return reply
        try:
            data = json.loads(reply.body)
        except ValueError:
            return reply
        changed = False
        for choice in (data.get("choices") or []) if isinstance(data, dict) else []:
            logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
            if isinstance(logprobs, dict) and isinstance(logprobs.get("token_logprobs"), list):
                for name in self.FIELDS:
                    if isinstance(logprobs.get(name), list):
                        logprobs[name] = _shift(logprobs[name], self.direction)
                if isinstance(choice.get("prompt_logprobs"), list):
                    choice["prompt_logprobs"] = _shift(choice["prompt_logprobs"], self.direction)
                changed = True
        if not changed:
            return reply
        return Reply(reply.status, reply.headers, json.dumps(data).encode())


def delay(seconds: float) -> Delay:
    return Delay(seconds)


def status(code: int, retry_after: float | str | None = None, *, forward: bool = False) -> Status:
    return Status(code, retry_after, forward)


def drop(*, forward: bool = False) -> Drop:
    return Drop(forward)


def truncate(*, full_length: bool = False, fraction: float = 0.5) -> Truncate:
    return Truncate(full_length, fraction)


def shift_logprobs(direction: int = 1, *, echo_only: bool = False) -> ShiftLogprobs:
    return ShiftLogprobs(direction, echo_only=echo_only)


@dataclass(frozen=True)
class Record:
    """One request: ``key`` = (method, path, body_sha256) identifies a repeat; ``faults`` the labels applied
    (received records only); ``upstream_status``/``upstream_bytes`` what the server answered (forwarded only)."""

    method: str
    path: str
    body_sha256: str
    body: bytes
    at: float
    faults: tuple[str, ...] = ()
    upstream_status: int | None = None
    upstream_bytes: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.method, self.path, self.body_sha256)

    def json(self):
        return json.loads(self.body) if self.body else None


FaultLike = Fault | Callable[[], Fault]


def _as_fault(fault: FaultLike) -> Fault:
    if isinstance(fault, Fault):
        return fault
    if callable(fault):
        made = fault()
        if isinstance(made, Fault):
            return made
    raise TypeError(f"not a fault: {fault!r}")


def _path_matches(pattern: str | None, path: str) -> bool:
    return pattern is None or path.split("?", 1)[0] == pattern


class FaultProxy:
    """A reverse proxy on 127.0.0.1 to ``upstream`` (a URL; only its scheme, host and port are used: the
    request's own path is forwarded). ``url`` is ``http://127.0.0.1:PORT/v1``. Start/stop with ``with`` (or
    ``start()``/``close()``)."""

    def __init__(self, upstream: str, *, port: int = 0, timeout: float = 120.0):
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self._client = httpx.Client(base_url=self.upstream, timeout=timeout)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._queue: list[tuple[str | None, Fault]] = []
        self._persistent: list[tuple[str | None, Fault]] = []
        self.received: list[Record] = []
        self.forwarded: list[Record] = []
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/v1"

    # -- faults ----------------------------------------------------------------------------------------------
    def push(self, fault: FaultLike, *, path: str | None = None, times: int = 1) -> FaultProxy:
        """Queue ``fault`` for the next ``times`` requests (to ``path`` only, when given: "/v1/completions")."""
        with self._lock:
            self._queue.extend((path, _as_fault(fault)) for _ in range(times))
        return self

    def always(self, fault: FaultLike, *, path: str | None = None) -> FaultProxy:
        """Apply ``fault`` to every request (to ``path``) from now on, after any one-shot fault."""
        with self._lock:
            self._persistent.append((path, _as_fault(fault)))
        return self

    def clear(self) -> None:
        """Forget queued and persistent faults (the counters stay)."""
        with self._lock:
            self._queue.clear()
            self._persistent.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset_counters(self) -> None:
        with self._lock:
            self.received.clear()
            self.forwarded.clear()

    # -- counters --------------------------------------------------------------------------------------------
    def count(self, which: str = "received", *, path: str | None = None) -> int:
        records = self.received if which == "received" else self.forwarded
        with self._lock:
            return sum(1 for r in records if _path_matches(path, r.path))

    def repeats(self, which: str = "forwarded") -> dict[tuple[str, str, str], int]:
        """(method, path, body_sha256) -> count, for those seen more than once (``which``: "received" or
        "forwarded")."""
        records = self.received if which == "received" else self.forwarded
        with self._lock:
            counts = Counter(r.key for r in records)
        return {k: n for k, n in counts.items() if n > 1}

    # -- life cycle ------------------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fault-proxy"
            )
            self._thread.start()
        return self

    def close(self, wait: float = 10.0) -> None:
        """Stop accepting, cut short any delay, let requests already forwarded finish (``wait`` seconds at
        most), then close the listening socket and the upstream client."""
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=wait)
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one request -----------------------------------------------------------------------------------------
    def _faults_for(self, path: str) -> list[Fault]:
        with self._lock:
            faults = []
            for i, (pattern, fault) in enumerate(self._queue):
                if _path_matches(pattern, path):
                    faults.append(fault)
                    del self._queue[i]
                    break
            faults.extend(f for pattern, f in self._persistent if _path_matches(pattern, path))
            return faults

    def _handle(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> Reply | object:
        with self._lock:
            self._in_flight += 1
        try:
            return self._handle_one(method, path, headers, body)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _handle_one(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> Reply | object:
        digest = hashlib.sha256(body).hexdigest()
        faults = self._faults_for(path)
        with self._lock:
            self.received.append(
                Record(method, path, digest, body, time.monotonic(), faults=tuple(f.label for f in faults))
            )
        for fault in faults:
            early = fault.before(self, method, path, body)
            if early is not None:
                return early
        if self._closing.is_set():
            return DROP
        forward_headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        forward_headers.append(("Accept-Encoding", "identity"))
        try:
            response = self._client.request(method, path, headers=forward_headers, content=body)
        except httpx.HTTPError as exc:
            reply: Reply | object = Reply(
                502, [("Content-Type", "text/plain")], f"fault proxy: upstream error: {exc!r}".encode()
            )
            with self._lock:
                self.forwarded.append(Record(method, path, digest, body, time.monotonic()))
            return reply
        with self._lock:
            self.forwarded.append(
                Record(
                    method,
                    path,
                    digest,
                    body,
                    time.monotonic(),
                    upstream_status=response.status_code,
                    upstream_bytes=len(response.content),
                )
            )
        reply = Reply(
            response.status_code,
            [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP],
            response.content,
        )
        for fault in faults:
            reply = fault.after(reply)
            if reply is DROP:
                break
        return reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # quiet
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.proxy._handle(self.command, self.path, list(self.headers.items()), body)
        try:
            if reply is DROP or not isinstance(reply, Reply):
                self._drop()
                return
            self.send_response(reply.status)
            for key, value in reply.headers:
                self.send_header(key, value)
            declared = reply.declared_length if reply.declared_length is not None else len(reply.body)
            self.send_header("Content-Length", str(declared))
            if reply.close:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
            if reply.close:
                self._drop()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout during a delay)
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any
