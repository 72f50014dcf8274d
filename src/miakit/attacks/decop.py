"""DE-COP: can the target pick a text out of a multiple-choice question whose other options are its paraphrases?

Duarte, Zhao, Oliveira, Li (ICML 2024, arXiv 2402.09910) probe a model with four-option questions: the
verbatim passage and three paraphrases of it, and the question "which of these passages is verbatim from ...?".
A model that was trained on the passage picks it out more often than chance (1/4). Each question is asked in
all 24 orders of its options, which cancels the model's preference for a position (the paper's answer to
selection bias; its extra per-dataset calibration of the letters' priors is not applied here).

What this module follows, checked against the authors' code (github.com/avduarte333/DE-COP_Method):

* ``2_decop_hf.py`` builds the question as ``"Question: Which of the following passages is verbatim from the
  "{title}" book by {author}?\\nOptions:\\nA. {o1}\\nB. {o2}\\nC. {o3}\\nD. {o4}\\n\\nAnswer:"`` and reads the
  logits of the four letter tokens at the answer's position, softmaxed over those four; the options are the
  passage and its paraphrases in each of the 24 permutations (``generate_permutations``). With log-probs
  (``answer="logprobs"``, ``Capability.TOPK_LOGPROBS``) the score here is the mean over the 24 orders of the
  verbatim option's letter probability renormalised over the four letters: each letter's log-prob is that of
  the text ``" A"`` (``" B"``, ...) after the question (``TokenStatsRequest(text=" A", context=question)``,
  summed over its tokens where the tokenizer splits it), so softmax over the four equals the reference's
  softmax over the letter logits. A membership score needs no title or author: the question asks which passage
  is "verbatim from a text you were trained on".
* The black-box variant (``answer="generation"``, ``Capability.GENERATION``) asks the same 24 questions for a
  greedy answer of a few tokens (the reference allows 2 to 4 new tokens) and scores the share of orders whose
  answer names the verbatim option's letter: the answer, after leading whitespace and punctuation, must start
  with one of the letters A-D standing alone (``"B"``, ``"B."``, ``"(B)"``); an answer that starts otherwise
  names no option and counts as wrong.
* The paraphrases: the paper's were written by Claude 2 (three per passage, asked to rewrite every sentence in
  other words at about the same length). Here a model the run knows by name, ``paraphraser`` (filled from
  ``--reference`` when the spec leaves it out), writes them: one ``GenerationRequest`` per text, ``n=candidates``
  continuations (3, as in the paper) sampled at ``temperature`` (0.7; the paper's sampling settings are not in
  the code read) with a fixed ``seed``, so they are stored and reproducible like every signal; the first three
  usable ones (below) in the order sampled are the options, so ``candidates`` above 3 draws spares for a
  paraphraser that sometimes writes nothing. The instruction prompt is this module's own wording of the
  request the paper sent Claude (rewrite all sentences in different words, about as long). The budget is two
  tokens per whitespace word of the passage (at least 8), at most ``max_new_tokens``, and at most half the
  paraphraser's context when the runner has told it (a local model keeps ``context - max_new_tokens`` prompt
  tokens). Options are stripped of surrounding whitespace, passage included, so that spacing does not tell the
  verbatim option apart.

Texts that cannot be asked score NaN and are counted, never dropped: a text of fewer than two whitespace words
(there is nothing to paraphrase; the paper's passages are 64 to 256 tokens), and a text with fewer than three
usable paraphrases among its ``candidates``, a paraphrase being unusable when it came back empty or equal to the
passage (after stripping whitespace): such a question would have no paraphrase in one option, or two verbatim
options. ``score_hint`` says so in the run's warnings. Two equal paraphrases are kept (the question is still one
verbatim option among four). On check_attack's tiny world the 2-layer paraphraser leaves about one sample in 30
empty (9% of texts with three), hence ``candidates=6`` there.

Cost: one paraphrase request (``candidates`` sampled paraphrases) per text, then 24 questions per text (96
one-letter scorings sharing 24 contexts with log-probs, 24 short greedy generations without); the question holds
the text four times, so a short context cuts it from the left (the engine counts truncated contexts). Hence
``in_all=False``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import Attack, check_count, require
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import GenerationRequest, TokenStatsRequest
from miakit.targets.capability import Capability

LETTERS = ("A", "B", "C", "D")
ANSWERS = ("logprobs", "generation")
N_PARAPHRASES = 3
ORDERS = tuple(itertools.permutations(range(1 + N_PARAPHRASES)))  # option k shows text order[k]; text 0 = verbatim
ANSWER_TOKENS = 4  # greedy answer budget of answer="generation" (the reference generates 2 to 4 tokens)
TOKENS_PER_WORD = 2  # paraphrase budget per whitespace word of the passage
MIN_BUDGET = 8
PARAPHRASE_PROMPT = (
    "Rewrite the passage below in different words. Keep its meaning and every one of its sentences, and make the "
    "rewrite about as long as the passage. Write only the rewritten passage.\n\nPassage: {text}\n\nRewritten passage:"
)
QUESTION_HEAD = "Question: Which of the following passages is verbatim from a text you were trained on?\nOptions:\n"
_ANSWER = re.compile(r"^[^A-Za-z0-9]*([ABCD])(?![A-Za-z0-9])")

_PLANTED = (
    "the planted model memorises a member only on its exact token sequence as a whole window; DE-COP reads one "
    "letter after a question quoting the member among its paraphrases, a different sequence: memorisation planted "
    "that way cannot show there"
)
_WEAK = (
    "a 2-layer GPT-2 trained on plain passages cannot read a multiple-choice question (its 128-token context keeps "
    "only the end of the last option), nor can the tiny reference model write paraphrases; the paper reports the "
    "effect for models of billions of parameters. The score's arithmetic is pinned on fixed paraphrases in "
    "tests/attacks/test_decop.py"
)


def answer_letter(text: str) -> str | None:
    """The option a generated answer names: after any leading characters other than ASCII letters and digits
    (whitespace, punctuation), a letter A-D not followed by a letter or digit (``"B"``, ``" B."``, ``"(B)"``);
    None when the answer starts otherwise (``"Banana"``, ``"The answer"``, ``""``)."""
    match = _ANSWER.match(text)
    return match.group(1) if match else None


def question(options: Sequence[str]) -> str:
    """The four-option question, ending in ``Answer:`` (the letter follows it)."""
    lines = "".join(f"{letter}. {option}\n" for letter, option in zip(LETTERS, options, strict=True))
    return f"{QUESTION_HEAD}{lines}\nAnswer:"


@register("decop")
class DECOP(Attack):
    """s = mean over the 24 orders of four options (the text and three paraphrases) of the target's probability
    of the verbatim option's letter, renormalised over the four letters (``answer="logprobs"``), or the share of
    orders whose greedy answer names it (``answer="generation"``); ``paraphraser`` names the model writing the
    paraphrases."""

    family = "multiple-choice probe"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    stages = ("pre-training", "fine-tuning")
    paper = (
        "Duarte, Zhao, Oliveira, Li, ICML 2024, DE-COP: Detecting Copyrighted Content in Language Models Training "
        "Data (arXiv 2402.09910); question and letter read-out from github.com/avduarte333/DE-COP_Method "
        "2_decop_hf.py"
    )
    summary = (
        "mean over the 24 option orders of the probability of the verbatim letter in a 4-way question: the text "
        "and 3 paraphrases written by --reference (answer=generation: share of greedy answers naming it)"
    )
    table_score = (
        "mean over 24 option orders of P(verbatim letter), renormalised over A-D, in a 4-way question: x and 3 "
        "paraphrases by `--reference` (T = {temperature}); `[answer=generation]`: share of greedy answers naming it"
    )
    cite = "Duarte et al. 2024"
    in_all = False  # 24 questions (96 letter scorings) per text, plus three paraphrases
    model_param = "paraphraser"
    tiny_world_params: ClassVar[dict[str, Any]] = {"max_new_tokens": 24, "candidates": 6, "answer": "generation"}
    tags: ClassVar[dict[str, str]] = {"weak_on_tiny_models": _WEAK, "planted_cannot_express": _PLANTED}

    def __init__(
        self,
        paraphraser: str | None = None,
        answer: str = "logprobs",
        temperature: float = 0.7,
        max_new_tokens: int = 256,
        candidates: int = 3,
        seed: int = 0,
    ) -> None:
        self.paraphraser = paraphraser
        self.answer = answer
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.candidates = candidates
        self.seed = seed

    # ---- parameters and planning -------------------------------------------------------------------------
    def check_params(self) -> None:
        require(
            self,
            isinstance(self.paraphraser, str) and bool(self.paraphraser),
            "it needs a model to write the paraphrases: pass --reference MODEL or write decop[paraphraser=NAME] "
            "(a model the run knows by name)",
        )
        require(self, self.answer in ANSWERS, f"answer must be one of {', '.join(ANSWERS)}, got {self.answer!r}")
        temperature = self.temperature
        ok = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature > 0
        require(self, ok, f"temperature must be positive (three different paraphrases are sampled), got {temperature}")
        check_count(self, "max_new_tokens")
        check_count(self, "candidates", minimum=N_PARAPHRASES)
        check_count(self, "seed", minimum=0)

    def needs(self) -> frozenset[Capability]:
        return frozenset({Capability.GENERATION}) if self.answer == "generation" else self.requires

    def score_hint(self, scores: np.ndarray, peers: Sequence[Attack] = ()) -> str | None:
        if not np.isnan(scores).any():
            return None
        return (
            f"{self.name} scores NaN for a text of fewer than two words (nothing to paraphrase) and for a text "
            f"with fewer than three of its {self.candidates} paraphrases by '{self.paraphraser}' usable (the others "
            f"came back empty or equal to the text); {self.name}[candidates=6] draws spare paraphrases"
        )

    # ---- paraphrases -------------------------------------------------------------------------------------
    def budget(self, text: str) -> int:
        """New tokens per paraphrase: two per word of ``text`` (at least 8), at most ``max_new_tokens`` and half
        the paraphraser's context when known."""
        budget = min(int(self.max_new_tokens), max(MIN_BUDGET, TOKENS_PER_WORD * len(text.split())))
        facts = self.facts(self.paraphraser)
        if facts is not None and facts.max_length >= 2:
            budget = min(budget, facts.max_length // 2)
        return max(1, budget)

    def paraphrase_request(self, text: str) -> GenerationRequest:
        return GenerationRequest(
            PARAPHRASE_PROMPT.format(text=text.strip()),
            n=int(self.candidates),
            temperature=float(self.temperature),
            max_new_tokens=self.budget(text),
            seed=int(self.seed),
            model=self.paraphraser,
        )

    def options(self, text: str, signals: Mapping[Any, Any], *, asked: bool = True) -> list[str] | None:
        """[verbatim, paraphrase 1, 2, 3], stripped: the first three usable paraphrases; None when the text cannot
        be asked (fewer than two words, paraphrases not there yet, or fewer than three non-empty ones that differ
        from the text). ``asked=False`` (between engine rounds) allows the paraphrases not to be there yet."""
        if len(text.split()) < 2:
            return None
        request = self.paraphrase_request(text)
        generation = signals[request] if asked else signals.get(request)
        if generation is None:
            return None
        verbatim = text.strip()
        usable = [p for t in generation.texts if (p := t.strip()) and p != verbatim]
        if len(usable) < N_PARAPHRASES:
            return None
        return [verbatim, *usable[:N_PARAPHRASES]]

    # ---- questions ---------------------------------------------------------------------------------------
    def questions(self, options: Sequence[str]) -> list[tuple[str, str]]:
        """(question, verbatim option's letter) for each of the 24 orders."""
        return [(question([options[i] for i in order]), LETTERS[order.index(0)]) for order in ORDERS]

    def letter_request(self, prompt: str, letter: str) -> TokenStatsRequest:
        return TokenStatsRequest(f" {letter}", context=prompt)

    def answer_request(self, prompt: str) -> GenerationRequest:
        return GenerationRequest(prompt, n=1, temperature=0.0, max_new_tokens=ANSWER_TOKENS)

    def question_requests(self, prompt: str) -> list[Any]:
        if self.answer == "generation":
            return [self.answer_request(prompt)]
        return [self.letter_request(prompt, letter) for letter in LETTERS]

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        self.check_params()  # no paraphraser: fail here, before any model loads
        return [self.paraphrase_request(s.text) for s in samples if len(s.text.split()) >= 2]

    def more_requests(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> list[Any]:
        out = []
        for s in samples:
            options = self.options(s.text, signals, asked=False)
            if options is not None:
                out.extend(r for prompt, _ in self.questions(options) for r in self.question_requests(prompt))
        return out

    # ---- scores ------------------------------------------------------------------------------------------
    def order_score(self, prompt: str, letter: str, signals: Mapping[Any, Any]) -> float:
        """The verbatim letter's renormalised probability (logprobs), or 1.0 / 0.0 (generation)."""
        if self.answer == "generation":
            return float(answer_letter(signals[self.answer_request(prompt)].texts[0]) == letter)
        logps = np.array(
            [np.sum(signals[self.letter_request(prompt, c)].logprob, dtype=np.float64) for c in LETTERS],
            dtype=np.float64,
        )
        logps -= np.max(logps)
        probs = np.exp(logps) / np.sum(np.exp(logps))
        return float(probs[LETTERS.index(letter)])

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.full(len(samples), np.nan)
        for i, s in enumerate(samples):
            options = self.options(s.text, signals)
            if options is not None:
                out[i] = float(np.mean([self.order_score(q, c, signals) for q, c in self.questions(options)]))
        return out

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        text = sample.text
        if len(text.split()) < 2:
            return math.nan
        words = len(text.split())
        budget = min(self.max_new_tokens, max(8, 2 * words))
        facts = self.facts(self.paraphraser)
        if facts is not None and facts.max_length >= 2:
            budget = min(budget, facts.max_length // 2)
        prompt = PARAPHRASE_PROMPT.replace("{text}", text.strip())
        request = GenerationRequest(
            prompt, self.candidates, self.temperature, 0, 1.0, budget, self.seed, self.paraphraser
        )
        texts = [text.strip()]
        for candidate in signals[request].texts:
            if len(texts) < 4 and candidate.strip() != "" and candidate.strip() != text.strip():
                texts.append(candidate.strip())
        if len(texts) < 4:
            return math.nan
        values = []
        for a in range(4):  # the option shown as A, B, C, D: every order of the four texts
            for b in range(4):
                for c in range(4):
                    for d in range(4):
                        if len({a, b, c, d}) < 4:
                            continue
                        shown = (a, b, c, d)
                        body = "Question: Which of the following passages is verbatim from a text you were "
                        body += "trained on?\nOptions:\n"
                        for letter, index in zip("ABCD", shown, strict=True):
                            body += letter + ". " + texts[index] + "\n"
                        body += "\nAnswer:"
                        right = "ABCD"[shown.index(0)]
                        if self.answer == "generation":
                            said = signals[GenerationRequest(body, 1, 0.0, 0, 1.0, 4)].texts[0]
                            ascii_alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            start = 0
                            while start < len(said) and said[start] not in ascii_alnum:
                                start += 1
                            after = said[start + 1 : start + 2]
                            named = said[start : start + 1] == right and (after == "" or after not in ascii_alnum)
                            values.append(1.0 if named else 0.0)
                        else:
                            logps = [
                                math.fsum(float(x) for x in signals[TokenStatsRequest(" " + c2, body)].logprob)
                                for c2 in "ABCD"
                            ]
                            top = max(logps)
                            weights = [math.exp(x - top) for x in logps]
                            values.append(weights["ABCD".index(right)] / math.fsum(weights))
        return math.fsum(values) / len(values)
