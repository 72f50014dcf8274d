"""A bare forward script: the least a LOSS audit must do, as one process (the whole-process baseline of
``overhead.py --whole-process``).

Loads the model and tokenizer with transformers, reads the texts of a JSONL file, tokenises them, runs them
longest first in right-padded batches (no KV cache), gathers each scored token's log-probability and averages
them per text. Nothing is stored or reported beyond a checksum, so its wall time is the floor that
``miakit audit`` (load, tokenise, forward, gather, plus everything else) is measured against.

    .venv/bin/python benchmarks/bare_forward.py MODEL_DIR samples.jsonl --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import time

started = time.perf_counter()

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("data", help="JSONL with a 'text' field per line")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    with open(args.data, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    rows = sorted((tokenizer(t)["input_ids"] for t in texts), key=len, reverse=True)
    means = []
    with torch.inference_mode():
        for start in range(0, len(rows), args.batch_size):
            batch = rows[start : start + args.batch_size]
            width = max(len(r) for r in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, r in enumerate(batch):
                ids[i, : len(r)] = torch.tensor(r)
                mask[i, : len(r)] = 1
            logp = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].log_softmax(-1)
            token = logp.gather(-1, ids[:, 1:, None])[..., 0]
            for i, r in enumerate(batch):
                means.append(float(token[i, : len(r) - 1].double().mean()))
    print(json.dumps({"texts": len(means), "checksum": sum(means), "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
