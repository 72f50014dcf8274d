"""The ``Generation`` record (the continuations a target produced for one prompt) and its stored form."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

GENERATION_VERSION = 1


@dataclass(frozen=True)
class Generation:
    """``n`` continuations of one prompt (the prompt itself excluded, generation stopped at EOS, which is not
    part of the text), their token ids and, where the target gives them, the log-prob of every generated token
    under the model's unmodified next-token distribution (temperature and top-k/top-p do not change it)."""

    texts: tuple[str, ...]
    token_ids: tuple[tuple[int, ...], ...]
    logprobs: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        if len(self.token_ids) != len(self.texts):
            raise ValueError("one token list per generated text")
        if self.logprobs is not None and [len(x) for x in self.logprobs] != [len(x) for x in self.token_ids]:
            raise ValueError("one log-prob per generated token")

    def __len__(self) -> int:
        return len(self.texts)

    def logprob_arrays(self) -> list[np.ndarray]:
        """Per continuation, the generated tokens' log-probs as float arrays (NaN where the target gave none)."""
        if self.logprobs is None:
            return [np.full(len(ids), np.nan) for ids in self.token_ids]
        return [np.asarray(x, dtype=float) for x in self.logprobs]

    def to_bytes(self) -> bytes:
        value = {"texts": list(self.texts), "token_ids": [list(x) for x in self.token_ids]}
        if self.logprobs is not None:
            value["logprobs"] = [list(x) for x in self.logprobs]
        return json.dumps(value, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, blob: bytes) -> Generation:
        value = json.loads(blob.decode("utf-8"))
        logprobs = value.get("logprobs")
        return cls(
            tuple(value["texts"]),
            tuple(tuple(int(t) for t in ids) for ids in value["token_ids"]),
            None if logprobs is None else tuple(tuple(float(v) for v in x) for x in logprobs),
        )
