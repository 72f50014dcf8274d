"""Requests, the TokenStats record, the engine and the persistent store."""

from miakit.signals.generation import Generation
from miakit.signals.next_tokens import NextTokens
from miakit.signals.requests import (
    ArrayRequest,
    EmbeddingRequest,
    GenerationRequest,
    GradNormRequest,
    HiddenStatesRequest,
    NeighboursRequest,
    NextTokensRequest,
    NoisyLossRequest,
    Request,
    TokenCountsRequest,
    TokenStatsRequest,
)
from miakit.signals.token_stats import STATS_VERSION, TokenStats

__all__ = [
    "STATS_VERSION",
    "ArrayRequest",
    "EmbeddingRequest",
    "Generation",
    "GenerationRequest",
    "GradNormRequest",
    "HiddenStatesRequest",
    "NeighboursRequest",
    "NextTokens",
    "NextTokensRequest",
    "NoisyLossRequest",
    "Request",
    "TokenCountsRequest",
    "TokenStats",
    "TokenStatsRequest",
]
