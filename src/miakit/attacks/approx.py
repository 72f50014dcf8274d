"""Full-distribution attacks run on top-k log-probs: the declared approximation ``approx=topk``.

Min-K%++, SURP and MaxRényi read summaries of the whole next-token distribution (its mean and spread of
log-probs, its entropies). An API shows only the top-k log-probs of each position and the actual token's. With
``approx=topk`` these attacks read the same summaries of the distribution renormalised over those tokens
(``targets.logit_stats.topk_summaries``), computed alike by a local model and a server; the column name carries
``[approx=topk]`` and the run's warnings say what was approximated.
"""

from __future__ import annotations

from typing import ClassVar

from miakit.attacks.base import TokenStatsAttack, check_count, require
from miakit.signals import TokenStatsRequest
from miakit.targets.capability import Capability

APPROXIMATIONS = ("full", "topk")
DEFAULT_TOPK = 20  # what vLLM (--max-logprobs) and OpenAI's chat API (top_logprobs) show at most by default


class TopKApproximable(TokenStatsAttack):
    """A token-statistics attack on the full distribution that may run, when asked, on its top-k approximation.

    Subclasses take ``approx: str = "full"`` and ``topk: int = DEFAULT_TOPK`` in ``__init__`` and call
    ``check_approx`` from ``check_params``.
    """

    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.FULL_LOGITS})
    approx: str
    topk: int

    def check_approx(self) -> None:
        require(self, self.approx in APPROXIMATIONS, f"approx must be 'full' or 'topk', got {self.approx!r}")
        check_count(self, "topk")
        require(
            self,
            self.approx == "topk" or self.topk == DEFAULT_TOPK,
            "topk applies only with approx=topk (the full distribution is read otherwise)",
        )

    @property
    def approximated(self) -> bool:
        return self.approx == "topk"

    def needs(self) -> frozenset[Capability]:
        return frozenset({Capability.TOPK_LOGPROBS}) if self.approximated else self.requires

    def stats_request(self, text: str) -> TokenStatsRequest:
        return TokenStatsRequest(text, topk=self.topk if self.approximated else 0)

    def notes(self) -> list[str]:
        if not self.approximated:
            return []
        return [
            f"approximation: the distribution summaries are those of the top {self.topk} tokens and the actual "
            "one, renormalised, not of the full next-token distribution"
        ]
