"""Sampling attacks: black-box membership scores from the target's generated text alone.

SaMIA (Kaneko et al. 2024) prompts with the first half of a text and measures how much of the true second half
the sampled continuations recover; CDD (Dong et al. 2024) measures how peaked the distribution of sampled outputs
is around the greedy one. Both need nothing but generated text (``Capability.GENERATION``): the continuations are
``GenerationRequest``s, seeded, so they are stored, batched and reused like every other signal, and a text's score
never depends on which other texts share its batch.

A text is cut after its first ``int(n * prefix_ratio)`` whitespace words (SaMIA's ``get_prefix``); a text with
no word before or after that cut (e.g. a single word) has no prompt or nothing to compare and scores NaN.
"""

from __future__ import annotations

import math
import numbers
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import Attack, check_count, require
from miakit.attacks.likelihood import zlib_length
from miakit.attacks.registry import register
from miakit.attacks.text_overlap import edit_distance, rouge_n, split_at_word, words
from miakit.data import Sample
from miakit.signals import Generation, GenerationRequest
from miakit.targets.capability import Capability

_PLANTED = (
    "the planted model memorises a member only in a forward pass over its whole token sequence, while generation "
    "reads a prefix and then one token at a time (with position ids the planted forward does not take): "
    "memorisation planted that way cannot show in generated text"
)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class PrefixGenerationAttack(Attack):
    """An attack that prompts the target with a text's first words and reads the generated continuations.

    ``max_new_tokens`` is capped at half the target's context when the runner has told it (``observe``): the local
    target keeps ``context - max_new_tokens`` prompt tokens, so a budget as long as the context would leave a
    one-token prompt. A cap is reported in the run's warnings.
    """

    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.GENERATION})
    stages: ClassVar[tuple[str, ...]] = ("pre-training", "fine-tuning")
    in_all: ClassVar[bool] = False  # generation costs a forward pass per new token, times the samples drawn
    tags: ClassVar[dict[str, str]] = {"planted_cannot_express": _PLANTED}

    prefix_ratio: float
    max_new_tokens: int

    def new_tokens(self) -> int:
        """The continuation budget: ``max_new_tokens``, at most half the target's context when that is known."""
        facts = self.facts(None)
        if facts is None or facts.max_length < 2:
            return int(self.max_new_tokens)
        return max(1, min(int(self.max_new_tokens), facts.max_length // 2))

    def notes(self) -> list[str]:
        budget = self.new_tokens()
        if budget >= self.max_new_tokens:
            return []
        context = self.facts(None).max_length
        return [
            f"continuations cut to {budget} new tokens (max_new_tokens {self.max_new_tokens}): half the target's "
            f"{context}-token context, so that the prompt keeps the other half"
        ]

    def score_hint(self, scores: np.ndarray, peers: Sequence[Attack] = ()) -> str | None:
        if not np.isnan(scores).any():
            return None
        return (
            f"{self.name} scores NaN for a text with no word before or after its cut (int(words * prefix_ratio) = 0, "
            "e.g. a single word): there is no prompt to continue"
        )

    def split(self, text: str) -> tuple[str, list[str]] | None:
        """(prompt, true continuation's words), or None for a text too short to split."""
        return split_at_word(text, self.prefix_ratio)

    def check_common(self) -> None:
        ratio = self.prefix_ratio
        require(self, _is_number(ratio) and 0 < ratio < 1, f"prefix_ratio must be in (0, 1), got {ratio}")
        check_count(self, "max_new_tokens")


def _check_sampling(attack: Attack, temperature: Any) -> None:
    ok = _is_number(temperature) and temperature > 0
    require(attack, ok, f"temperature must be positive (the attack samples), got {temperature}")


UNITS = ("tokens", "words")


def _plain_words(text: str) -> list[str]:
    return text.split()


@register("samia")
class SaMIA(PrefixGenerationAttack):
    """s = mean_j ROUGE-1 recall(c_j, x_suffix): c_j the ``n`` continuations sampled from the text's first half.

    Checked against the authors' code (github.com/nlp-titech/samia): ``src/sampling.py`` prompts with the first
    ``int(words * 0.5)`` words and samples 10 continuations with ``do_sample=True, temperature=1, top_k=50,
    top_p=1, max_length=1024`` (prompt and continuation together); ``src/eval_samia.py`` scores ROUGE-N with N = 1
    as *recall* (clipped unigram matches / reference length) over words split on spaces, case and punctuation
    kept, no ROUGE tokenisation, 0 when either side is empty, averaged over the samples. Here the continuation
    is the generated text alone (the reference decodes prompt and continuation and drops the prompt's word count);
    words are split on any whitespace (the reference splits on single spaces, so there a newline glues two words;
    WikiMIA has none); the prompt is the text itself up to its cut, spacing kept (the reference re-joins words with
    single spaces). ``max_new_tokens`` 1024 is the reference's budget for prompt and continuation together, here
    for the continuation (capped at half the context, see ``PrefixGenerationAttack``).
    """

    family = "sampling"
    paper = (
        "Kaneko, Ma, Wata, Okazaki 2024, Sampling-based Pseudo-Likelihood for Membership Inference Attacks "
        "(arXiv 2404.11262); defaults and formula from github.com/nlp-titech/samia src/sampling.py, src/eval_samia.py"
    )
    summary = "mean ROUGE-1 recall of sampled continuations of the text's first half against its second half"
    table_score = (
        "mean ROUGE-1 recall of {n} continuations sampled from the first half (T = {temperature}, top-k {top_k}) "
        "against the true second half"
    )
    cite = "Kaneko et al. 2024"
    # A 2-layer model's samples at temperature 1 are close to noise (measured AUROC 0.610 at n 5, 32 new tokens,
    # below the permutation threshold 0.625); at 0.5 they follow what it memorised (0.683 against 0.617 with 24
    # new tokens; SaMIA*zlib 0.676 against 0.618).
    tiny_world_params: ClassVar[dict[str, Any]] = {"n": 5, "temperature": 0.5, "max_new_tokens": 24}
    use_zlib: ClassVar[bool] = False

    def __init__(
        self,
        n: int = 10,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 1.0,
        max_new_tokens: int = 1024,
        prefix_ratio: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.n = n
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.prefix_ratio = prefix_ratio
        self.seed = seed

    def check_params(self) -> None:
        check_count(self, "n")
        _check_sampling(self, self.temperature)
        check_count(self, "top_k", minimum=0)
        ok = _is_number(self.top_p) and 0 < self.top_p <= 1
        require(self, ok, f"top_p must be in (0, 1], got {self.top_p}")
        check_count(self, "seed", minimum=0)
        self.check_common()

    def request(self, prompt: str) -> GenerationRequest:
        return GenerationRequest(
            prompt,
            n=int(self.n),
            temperature=float(self.temperature),
            top_k=int(self.top_k),
            top_p=float(self.top_p),
            max_new_tokens=self.new_tokens(),
            seed=int(self.seed),
        )

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [self.request(cut[0]) for s in samples if (cut := self.split(s.text)) is not None]

    def candidate_score(self, candidate: list[str], reference: list[str]) -> float:
        recall = rouge_n(reference, candidate, 1).recall
        return recall * zlib_length(" ".join(candidate)) if self.use_zlib else recall

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.full(len(samples), np.nan)
        for i, s in enumerate(samples):
            cut = self.split(s.text)
            if cut is None:
                continue
            generation: Generation = signals[self.request(cut[0])]
            values = [self.candidate_score(words(t), cut[1]) for t in generation.texts]
            out[i] = float(np.mean(values)) if values else np.nan
        return out

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        all_words = _plain_words(sample.text)
        k = int(len(all_words) * self.prefix_ratio)
        if k < 1 or k >= len(all_words):
            return math.nan
        reference = all_words[k:]
        end = 0
        for word in all_words[:k]:  # the prompt: the text up to the end of its k-th word
            end = sample.text.index(word, end) + len(word)
        request = GenerationRequest(
            sample.text[:end], self.n, self.temperature, self.top_k, self.top_p, self.new_tokens(), self.seed
        )
        values = []
        for text in signals[request].texts:
            candidate = _plain_words(text)
            left = list(candidate)
            matched = 0
            for word in reference:
                if word in left:
                    left.remove(word)
                    matched += 1
            value = matched / len(reference)
            if self.use_zlib:
                value *= len(zlib.compress(" ".join(candidate).encode("utf-8")))
            values.append(value)
        return math.fsum(values) / len(values) if values else math.nan


@register("samia_zlib")
class SaMIAZlib(SaMIA):
    """s = mean_j ROUGE-1 recall(c_j, x_suffix) * zlib(c_j): SaMIA*zlib, each sample's recall weighted by the
    zlib-compressed byte length of that sample (its words joined by spaces), as ``--zlib`` in the authors'
    ``src/eval_samia.py`` does (a product with the *candidate's* compressed length, not a ratio with the text's)."""

    paper = SaMIA.paper
    summary = "SaMIA with each sample's ROUGE-1 recall multiplied by the sample's zlib-compressed length"
    table_score = "mean over {n} sampled continuations of ROUGE-1 recall × zlib length of the continuation (SaMIA*zlib)"
    cite = "Kaneko et al. 2024"
    use_zlib: ClassVar[bool] = True


@register("cdd")
class CDD(PrefixGenerationAttack):
    """s = peak = share of the ``n`` sampled outputs within edit distance ``alpha * l`` of the greedy output.

    Contamination Detection via output Distribution: a memorised text makes the output distribution peaked, so
    samples at temperature 0.8 stay close to the greedy output. Checked against the authors' ``CDD.py``
    (github.com/YihongDong/CDD-TED4LLMs): token-level Levenshtein distance between each sample's first 100 token
    ids and the greedy output's, ``l`` the longest of those token lists (greedy included), peak = share of
    distances ``<= alpha * l`` with ``alpha`` 0.05; the comment there gives the samples as 50 at temperature 0.8
    and the greedy one at temperature 0, and ``Call_ChatGPT.py`` samples with ``top_p=1`` (no top-k). The paper
    prompts with a benchmark question; as a membership attack the prompt here is the text's first half (SaMIA's
    cut), and ``max_new_tokens`` 100 generates exactly the 100 tokens the reference compares. The reference's
    code-specific clean-up (strip, cut at a blank line or a code fence) is not applied: token ids are the target's
    own, as generated. A continuation that stops at once has no tokens; with every output empty, ``l`` is 0 and all
    distances are 0, so peak is 1, as in the reference.

    ``unit="tokens"`` needs the target's token ids of its outputs; a server that returns text only (no token ids,
    no tokenizer) leaves them empty, and a text whose outputs lack them scores NaN rather than a false peak of 1.
    ``unit="words"`` compares whitespace words of the output texts instead (same ``alpha``), for such targets.
    """

    family = "sampling"
    paper = (
        "Dong, Jiang, Liu, Jin, Li, ACL 2024, Generalization or Memorization: Data Contamination and Trustworthy "
        "Evaluation for Large Language Models (arXiv 2402.15938); defaults from github.com/YihongDong/CDD-TED4LLMs "
        "CDD.py and Call_ChatGPT.py"
    )
    summary = "share of sampled continuations within token edit distance alpha * length of the greedy one"
    table_score = (
        "share of {n} samples (T = {temperature}) within token edit distance α·l (α = {alpha}) of the greedy "
        "continuation of the first half"
    )
    cite = "Dong et al. 2024"
    tiny_world_params: ClassVar[dict[str, Any]] = {"n": 5, "max_new_tokens": 16}
    tags: ClassVar[dict[str, str]] = {
        "planted_cannot_express": _PLANTED,
        "weak_on_tiny_models": (
            "on the 2-layer world model, samples of members are no closer to the greedy output than samples of "
            "non-members (measured AUROC 0.526 at n 5 with 16 new tokens, below the permutation threshold 0.577; "
            "0.508 at n 10 with 32 tokens; every alpha from 0.05 to 0.7 gives 0.43 to 0.51), as CDD is reported to "
            "fail on small models whose outputs do not concentrate; its orientation is pinned on hand-built "
            "generations in tests/attacks/test_blackbox_sampling.py"
        ),
    }

    def __init__(
        self,
        n: int = 50,
        temperature: float = 0.8,
        alpha: float = 0.05,
        max_new_tokens: int = 100,
        prefix_ratio: float = 0.5,
        unit: str = "tokens",
        seed: int = 0,
    ) -> None:
        self.n = n
        self.temperature = temperature
        self.alpha = alpha
        self.max_new_tokens = max_new_tokens
        self.prefix_ratio = prefix_ratio
        self.unit = unit
        self.seed = seed

    def check_params(self) -> None:
        check_count(self, "n")
        _check_sampling(self, self.temperature)
        require(self, _is_number(self.alpha) and self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        require(self, self.unit in UNITS, f"unit must be one of {', '.join(UNITS)}, got {self.unit}")
        check_count(self, "seed", minimum=0)
        self.check_common()

    def greedy_request(self, prompt: str) -> GenerationRequest:
        return GenerationRequest(prompt, n=1, temperature=0.0, max_new_tokens=self.new_tokens())

    def sampled_request(self, prompt: str) -> GenerationRequest:
        return GenerationRequest(
            prompt, n=int(self.n), temperature=float(self.temperature), max_new_tokens=self.new_tokens(),
            seed=int(self.seed),
        )  # fmt: skip

    def units(self, generation: Generation) -> list[tuple[Any, ...]] | None:
        """Each output as the sequence compared: its token ids (None when a non-empty text came without any), or
        its whitespace words."""
        if self.unit == "words":
            return [tuple(words(t)) for t in generation.texts]
        if any(t and not ids for t, ids in zip(generation.texts, generation.token_ids, strict=True)):
            return None
        return [tuple(ids) for ids in generation.token_ids]

    def score_hint(self, scores: np.ndarray, peers: Sequence[Attack] = ()) -> str | None:
        if self.unit != "tokens" or not np.isnan(scores).any():
            return None
        return (
            "cdd scores NaN for a text of fewer than two words, and for one whose outputs came without token ids "
            "(a server that returns text only): cdd[unit=words] compares whitespace words instead"
        )

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        prompts = [cut[0] for s in samples if (cut := self.split(s.text)) is not None]
        return [r for p in prompts for r in (self.greedy_request(p), self.sampled_request(p))]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.full(len(samples), np.nan)
        for i, s in enumerate(samples):
            cut = self.split(s.text)
            if cut is None:
                continue
            greedy = self.units(signals[self.greedy_request(cut[0])])
            sampled = self.units(signals[self.sampled_request(cut[0])])
            if greedy is None or sampled is None:
                continue  # no token ids to compare: NaN
            greedy = greedy[0]
            longest = max([len(greedy), *(len(ids) for ids in sampled)])
            distances = np.array([edit_distance(greedy, ids) for ids in sampled], dtype=np.float64)
            out[i] = float(np.mean(distances <= self.alpha * longest)) if len(distances) else np.nan
        return out

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        cut = split_at_word(sample.text, self.prefix_ratio)
        if cut is None:
            return math.nan
        budget = self.new_tokens()
        outputs = [
            signals[GenerationRequest(cut[0], 1, 0.0, 0, 1.0, budget)],
            signals[GenerationRequest(cut[0], self.n, self.temperature, 0, 1.0, budget, self.seed)],
        ]
        if self.unit == "words":
            (greedy,), sampled = ([t.split() for t in g.texts] for g in outputs)
        else:
            for g in outputs:
                if any(len(t) > 0 and len(ids) == 0 for t, ids in zip(g.texts, g.token_ids, strict=True)):
                    return math.nan
            (greedy,), sampled = (g.token_ids for g in outputs)
        greedy = list(greedy)
        longest = max([len(greedy)] + [len(ids) for ids in sampled])
        distances = [_plain_levenshtein(list(ids), greedy) for ids in sampled]
        count = sum(1 for d in distances if d <= self.alpha * longest)
        return count / len(distances) if distances else math.nan


def _plain_levenshtein(a: list[int], b: list[int]) -> int:
    """The full-table Levenshtein distance, for reference scores."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
    return table[-1][-1]
