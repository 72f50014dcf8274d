"""What a backend can do; attacks declare what they need from this set."""

from __future__ import annotations

from enum import Enum


class Capability(str, Enum):
    GENERATION = "generation"  # generated text (the black-box setting)
    TOKEN_IDS = "token_ids"  # the target's own token ids: it tokenises text and continues token-id prompts
    TOPK_LOGPROBS = "topk_logprobs"
    FULL_LOGITS = "full_logits"
    HIDDEN_STATES = "hidden_states"
    GRADIENTS = "gradients"
    EMBEDDINGS_IN = "embeddings_in"
    IMAGES = "images"


CAUSAL_LM = frozenset(
    {
        Capability.GENERATION,
        Capability.TOKEN_IDS,
        Capability.TOPK_LOGPROBS,
        Capability.FULL_LOGITS,
        Capability.HIDDEN_STATES,
        Capability.GRADIENTS,
        Capability.EMBEDDINGS_IN,
    }
)
"""What a causal LM with local weights offers (``HFCausalLM`` and its deferred stand-in)."""
