"""Requests, the TokenStats record, the engine and the persistent store."""

from miakit.signals.generation import Generation
from miakit.signals.requests import (
    ArrayRequest,
    GenerationRequest,
    GradNormRequest,
    HiddenStatesRequest,
    NeighboursRequest,
    NoisyLossRequest,
    Request,
    TokenCountsRequest,
    TokenStatsRequest,
)
from miakit.signals.token_stats import STATS_VERSION, TokenStats

__all__ = [
    "STATS_VERSION",
    "ArrayRequest",
    "Generation",
    "GenerationRequest",
    "GradNormRequest",
    "HiddenStatesRequest",
    "NeighboursRequest",
    "NoisyLossRequest",
    "Request",
    "TokenCountsRequest",
    "TokenStats",
    "TokenStatsRequest",
]
