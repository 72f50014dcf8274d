"""What a backend can do; attacks declare what they need from this set."""

from __future__ import annotations

from enum import Enum


class Capability(str, Enum):
    TEXT = "text"
    TOPK_LOGPROBS = "topk_logprobs"
    FULL_LOGITS = "full_logits"
    HIDDEN_STATES = "hidden_states"
    GRADIENTS = "gradients"
    EMBEDDINGS_IN = "embeddings_in"
    IMAGES = "images"
