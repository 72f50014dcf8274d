"""Requests, the TokenStats record, the engine and the persistent store."""

from miakit.signals.requests import Request, TokenCountsRequest, TokenStatsRequest
from miakit.signals.token_stats import STATS_VERSION, TokenStats

__all__ = ["STATS_VERSION", "Request", "TokenCountsRequest", "TokenStats", "TokenStatsRequest"]
