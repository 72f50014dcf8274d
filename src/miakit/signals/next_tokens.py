"""The ``NextTokens`` record: a model's greedy next token after every prefix of one text, and its stored form.

Greedy one-token generation from the prefix ``ids[:i]`` picks the argmax of the next-token distribution at
position ``i - 1``; one causal forward pass over the text gives it for every ``i = 1..n-1`` at once. The record
keeps the text's token ids, the predicted id after each prefix (aligned with the true tokens ``ids[1:]``) and
both tokens decoded one by one with the model's tokenizer (``tokenizer.decode(id)``, special tokens kept), the
strings label-only attacks compare (PETAL embeds them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

NEXT_TOKENS_VERSION = 1


@dataclass(frozen=True)
class NextTokens:
    """``token_ids``: the text's ids (cut to the model's context); ``predicted[j]``: the greedy token after
    ``token_ids[: j + 1]`` (-1 where the target did not say its id); ``true_pieces[j]`` / ``predicted_pieces[j]``:
    ``token_ids[j + 1]`` and ``predicted[j]`` decoded on their own."""

    token_ids: tuple[int, ...]
    predicted: tuple[int, ...]
    true_pieces: tuple[str, ...]
    predicted_pieces: tuple[str, ...]

    def __post_init__(self) -> None:
        n = max(0, len(self.token_ids) - 1)
        if not len(self.predicted) == len(self.true_pieces) == len(self.predicted_pieces) == n:
            raise ValueError(f"one prediction and two pieces per position 1..{n} of the text")

    def __len__(self) -> int:
        """Positions predicted (the text's tokens minus the first)."""
        return len(self.predicted)

    @classmethod
    def empty(cls, token_ids: tuple[int, ...] = ()) -> NextTokens:
        """A text of at most one token: nothing to predict."""
        return cls(tuple(token_ids[:1]), (), (), ())

    def to_bytes(self) -> bytes:
        value = {
            "token_ids": list(self.token_ids),
            "predicted": list(self.predicted),
            "true_pieces": list(self.true_pieces),
            "predicted_pieces": list(self.predicted_pieces),
        }
        return json.dumps(value, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, blob: bytes) -> NextTokens:
        value = json.loads(blob.decode("utf-8"))
        return cls(
            tuple(int(t) for t in value["token_ids"]),
            tuple(int(t) for t in value["predicted"]),
            tuple(str(p) for p in value["true_pieces"]),
            tuple(str(p) for p in value["predicted_pieces"]),
        )
