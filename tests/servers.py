"""A real OpenAI-compatible server for the tests: vLLM for CPU serving a tiny GPT-2 trained here, on 127.0.0.1.

vLLM lives in a virtual environment of its own (it pins transformers>=5.16.1,<5.20): ``make install-vllm`` builds
``.venv-vllm``; ``MIAKIT_VLLM_PYTHON`` points at another interpreter. The session fixture ``vllm_server`` in
conftest.py ties the pieces together; this module has no pytest dependency.

What vLLM 0.32.0 (CPU) answers, checked by tests/targets/test_vllm_server.py:

- ``POST /v1/completions {prompt, echo: true, logprobs: k, max_tokens: 0}`` scores the prompt alone. ``choices[i]
  .logprobs`` has ``tokens`` (decoded strings, e.g. " old", not ids and not "Ġold"), ``token_logprobs`` (floats,
  ``[0]`` is null: the first token has no context), ``top_logprobs`` (``[0]`` null, then a ``{token string:
  logprob}`` dict with the k most likely tokens plus the actual token, so k or k+1 entries) and ``text_offset``.
  It also adds the vLLM-only ``prompt_logprobs``: ``[null, {"<token id>": {"logprob", "rank", "decoded_token"}},
  ...]``. ``max_tokens: 0`` is accepted only with ``echo: true`` (otherwise 400 "max_tokens must be at least 1");
  ``usage.completion_tokens`` is still 1. With ``max_tokens: 1`` the generated token is appended to every list.
- ``prompt`` may be a string, a list of strings, a list of token ids or a list of lists of ids: one choice per
  prompt, ``index`` in order. No BOS is added to a string prompt (GPT-2's tokenizer adds none).
- ``logprobs`` or ``prompt_logprobs`` above ``--max-logprobs`` (20 here) is a 400: "Requested sample logprobs of
  21, which is greater than max allowed: 20". A prompt longer than ``--max-model-len`` is a 400 too.
- ``POST /tokenize {model, prompt}`` (at the root, not under /v1) returns ``{"count", "max_model_len", "tokens":
  [ids], "token_strs": null}``; with ``"return_token_strs": true`` the raw BPE strings ("Ġold") as well.
  ``POST /detokenize {model, tokens}`` returns ``{"prompt": text}``.
- ``n: 3, seed: S, temperature: 1`` returns three distinct choices, the same on repeat; choice j is sampled with
  seed S + j, so seed S + 1 repeats choices 1 and 2 of seed S as its choices 0 and 1. ``n > 1`` with
  ``temperature: 0`` is a 400.
- Chat completions need a chat template: ``save_served_model`` writes a plain one (``chat_template.jinja``).

Start-up: ~35-45 s on 2 cores (mostly three Python processes importing torch and vLLM); ~3.3-4.0 GB resident, 2 GiB
of it the KV cache. The worker runs inside the engine-core process (``--distributed-executor-backend uni`` with
``VLLM_ENABLE_V1_MULTIPROCESSING=0``), which saves a process; log-probs still match transformers.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VLLM_VENV = REPO_ROOT / ".venv-vllm"

# A plain role-prefixed chat format, so that /v1/chat/completions works on the tiny model (it has no template).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}assistant:{%- endif -%}"
)
SERVED_INFO = "miakit_served.json"


def vllm_python() -> str | None:
    """The interpreter that has vLLM: ``MIAKIT_VLLM_PYTHON`` when set (None if that file is missing), else
    ``.venv-vllm/bin/python`` under the repository root when present, else None."""
    env = os.environ.get("MIAKIT_VLLM_PYTHON")
    if env:
        return env if Path(env).is_file() else None
    candidate = DEFAULT_VLLM_VENV / "bin" / "python"
    return str(candidate) if candidate.is_file() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------------
# The served model


@dataclass(frozen=True)
class ServedModel:
    """A tiny GPT-2 saved as a Hugging Face directory, with its ground truth: ``members`` were its whole training
    set, ``nonmembers`` are other bundled passages it never saw. Every passage fits in ``max_model_len`` tokens."""

    dir: Path
    name: str
    members: tuple[str, ...]
    nonmembers: tuple[str, ...]
    max_model_len: int


def save_served_model(
    directory: Path | str,
    *,
    name: str = "miakit-tiny-gpt",
    n_members: int = 200,
    n_nonmembers: int = 200,
    epochs: int = 6,
    seed: int = 0,
) -> ServedModel:
    """Train a 2-layer GPT-2 (with its own 512-symbol byte-level BPE) from scratch on ``n_members`` bundled
    passages and save it to ``directory`` in a form vLLM serves: ``model.safetensors``, ``config.json``,
    ``generation_config.json``, a fast tokenizer (``tokenizer.json``), plus ``chat_template.jinja`` for chat
    completions and ``miakit_served.json`` (name, members, non-members).

    Passages of at most 320 characters (<= ~160 tokens), drawn with ``random.Random(seed)``; ``max_model_len`` =
    ``n_positions`` = 256. Batch 4, lr 3e-3, one torch thread (two oversubscribe a 2-core machine while vLLM or
    another process runs): about 15 s on 2 idle cores for 200 passages and 6 epochs (30-45 s when other work shares
    them), deterministic for a seed, and a LOSS attack separates members from non-members with an AUROC of about
    0.88 (1.0 with 8 epochs).
    """
    from miakit.scenarios import load_bundled_passages, train_tiny_gpt

    max_model_len = 256
    texts = sorted({p["text"] for p in load_bundled_passages() if len(p["text"]) <= 320})
    if n_members + n_nonmembers > len(texts):
        raise ValueError(f"only {len(texts)} short passages, asked for {n_members} + {n_nonmembers}")
    pool = random.Random(seed).sample(texts, n_members + n_nonmembers)
    members, nonmembers = tuple(pool[:n_members]), tuple(pool[n_members:])
    out = Path(directory)
    train_tiny_gpt(
        list(members),
        out,
        epochs=epochs,
        seed=seed,
        vocab_size=512,
        max_length=max_model_len,
        batch_size=4,
        lr=3e-3,
        num_threads=1,
    )
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    info = {"name": name, "max_model_len": max_model_len, "members": members, "nonmembers": nonmembers}
    (out / SERVED_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return ServedModel(out, name, members, nonmembers, max_model_len)


# ---------------------------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class VLLMServer:
    """A running vLLM server: ``base_url`` is ``http://127.0.0.1:PORT/v1`` (``origin`` without ``/v1``, where
    ``/tokenize`` lives), ``name`` the served model name. ``members``/``nonmembers`` are filled in by the
    ``vllm_server`` fixture (empty when started on a directory without ground truth)."""

    base_url: str
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    model_dir: Path
    max_model_len: int
    startup_seconds: float
    members: tuple[str, ...] = ()
    nonmembers: tuple[str, ...] = ()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def rss_bytes(self) -> int:
        """Resident memory of the whole server (API process, engine core, worker...): the sum over its process
        group, read from /proc (0 where /proc is absent)."""
        return _group_rss(self.process.pid)


def _tail(path: Path, lines: int) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _group_rss(pgid: int) -> int:
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            # Fields after the parenthesised command: state ppid pgrp ...
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # PR_SET_PDEATHSIG: the API server gets SIGTERM if the thread that started it dies (a killed pytest), and takes
    # its engine processes down with it. The session fixture runs in the main thread, so that is pytest's death.
    with contextlib.suppress(Exception):
        _LIBC.prctl(1, signal.SIGTERM)


_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the whole process group, SIGKILL it after ``grace`` seconds if anything is left."""
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, else it stays a zombie member of the group
        if process.returncode is not None and not _group_alive(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def vllm_command(
    python: str, model_dir: Path | str, name: str, *, port: int, max_model_len: int, extra_args: Sequence[str] = ()
) -> list[str]:
    return [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--dtype",
        "float32",
        "--max-model-len",
        str(max_model_len),
        "--max-logprobs",
        "20",
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",  # no torch.compile: ~30 s start-up instead of 75-100 s
        # The worker inside the engine-core process instead of a third process (~12 s and ~0.7 GB less). On CPU,
        # vLLM turns "uni" back into "mp" unless VLLM_ENABLE_V1_MULTIPROCESSING=0 (set by vllm_env).
        "--distributed-executor-backend",
        "uni",
        *extra_args,
    ]


def vllm_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_CPU_KVCACHE_SPACE="2",  # GiB; the default is far more than a test needs
        VLLM_NO_USAGE_STATS="1",  # no usage report to the outside
        VLLM_ENABLE_V1_MULTIPROCESSING="0",  # with --distributed-executor-backend uni: no separate worker process
        DO_NOT_TRACK="1",
    )
    env.update(extra or {})
    return env


@contextlib.contextmanager
def start_vllm(
    model_dir: Path | str,
    name: str,
    *,
    max_model_len: int,
    log_path: Path | str,
    python: str | None = None,
    port: int | None = None,
    timeout: float = 180.0,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[VLLMServer]:
    """Start vLLM on ``model_dir`` as ``name`` on 127.0.0.1 and yield a ``VLLMServer`` once ``GET /v1/models``
    answers 200.

    The server runs in its own process group (``start_new_session``) with stdout and stderr appended to
    ``log_path``. If it exits or has not answered within ``timeout`` seconds, the group is stopped and a
    ``RuntimeError`` carries the last 40 lines of the log; a port taken between ``free_port`` and the bind is
    retried on another port (twice). On exit: SIGTERM to the whole group, SIGKILL after 10 s.
    """
    python = python or vllm_python()
    if python is None:
        raise RuntimeError("no vLLM interpreter: run `make install-vllm` or set MIAKIT_VLLM_PYTHON")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        this_port = port if port is not None else free_port()
        cmd = vllm_command(python, model_dir, name, port=this_port, max_model_len=max_model_len, extra_args=extra_args)
        started = time.monotonic()
        with open(log_path, "ab") as log:
            log.write(f"\n$ {' '.join(cmd)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=vllm_env(env),
                cwd=str(log_path.parent),
                start_new_session=True,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        try:
            error = _wait_ready(process, f"http://127.0.0.1:{this_port}", timeout)
        except BaseException:
            _stop_group(process)
            raise
        if error is None:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"# tests/servers.py: ready after {time.monotonic() - started:.1f} s\n")
            break
        _stop_group(process)
        tail = _tail(log_path, 40)
        if "address already in use" in tail.lower() and attempt + 1 < attempts:
            continue
        raise RuntimeError(f"vLLM did not start ({error}); last lines of {log_path}:\n{tail}")
    server = VLLMServer(
        base_url=f"http://127.0.0.1:{this_port}/v1",
        name=name,
        process=process,
        port=this_port,
        log_path=log_path,
        model_dir=Path(model_dir),
        max_model_len=max_model_len,
        startup_seconds=time.monotonic() - started,
    )
    try:
        yield server
    finally:
        _stop_group(process)


def _wait_ready(process: subprocess.Popen, origin: str, timeout: float) -> str | None:
    """None once GET /v1/models answers 200; otherwise why not (the process exited, or the timeout passed)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return f"the server exited with status {process.returncode}"
            try:
                if client.get(f"{origin}/v1/models").status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    return f"no answer from {origin}/v1/models within {timeout:.0f} s"


def with_ground_truth(server: VLLMServer, model: ServedModel) -> VLLMServer:
    """``server`` with ``model``'s members and non-members attached."""
    return dataclasses.replace(server, members=model.members, nonmembers=model.nonmembers)
