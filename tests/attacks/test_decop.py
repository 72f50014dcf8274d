"""DE-COP against independent computations: on fixed paraphrases, the score equals the mean over the 24 option
orders of the verbatim letter's probability renormalised over A-D, computed with torch from a tiny model's logits;
the generation variant counts the answers that name the verbatim letter; paraphrases come from the named model,
seeded; unusable paraphrases and bad parameters are reported; ``miakit audit`` writes the columns."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re

import numpy as np
import pytest
import torch

from cli_helpers import run_cli
from lm_helpers import make_model
from miakit.attacks import ATTACKS, build_attacks
from miakit.attacks.base import ModelFacts
from miakit.attacks.decop import answer_letter
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.report import read_run
from miakit.run.runner import collect_signals
from miakit.signals import Generation, GenerationRequest, TokenStats, TokenStatsRequest
from miakit.signals.engine import Engine, Signals
from miakit.targets.capability import Capability
from miakit.targets.hf_causal import HFCausalLM

PASSAGE = "The king and the queen walked to the river at night."
PARAPHRASES = (
    " At night the king and queen went down to the river.",
    "The royal pair strolled to the river after dark.\n",
    "By night, the king and his queen walked along to the river.",
)
HEAD = "Question: Which of the following passages is verbatim from a text you were trained on?\nOptions:\n"


def written_question(shown: list[str]) -> str:
    """The question as the module documents it, written out here by hand."""
    return HEAD + f"A. {shown[0]}\nB. {shown[1]}\nC. {shown[2]}\nD. {shown[3]}\n\nAnswer:"


def fixed_signals(attack, text: str, paraphrases) -> dict:
    """The paraphrase request of ``text`` answered with ``paraphrases`` (no paraphraser runs)."""
    request = attack.paraphrase_request(text)
    return {request: Generation(tuple(paraphrases), tuple(() for _ in paraphrases))}


@pytest.fixture(scope="module")
def long_target(tiny_tokenizer):
    """A random tiny GPT-2 whose context holds a whole question (the conftest one has 64 positions), its final
    layer norm scaled up so that its next-token distribution is sharp and depends on the options' content: a
    model blind to content scores exactly 1/4 whatever its position bias (the 24 orders cancel it)."""
    model = make_model(len(tiny_tokenizer), n_positions=512, seed=7)
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(40.0)
    return HFCausalLM.from_model(model, tiny_tokenizer, name="long")


def letter_probabilities(model, tokenizer, prompt: str) -> np.ndarray:
    """P(" A"), ..., P(" D") after ``prompt`` (each letter's tokens, joint), renormalised over the four."""
    context = tokenizer(prompt)["input_ids"]
    logps = []
    for letter in "ABCD":
        ids = tokenizer(prompt + " " + letter)["input_ids"]
        assert ids[: len(context)] == context
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        logps.append(sum(float(logp[pos - 1, ids[pos]]) for pos in range(len(context), len(ids))))
    probs = np.exp(np.array(logps) - max(logps))
    return probs / probs.sum()


def test_score_is_the_mean_renormalised_letter_probability_over_24_orders(long_target, tiny_tokenizer):
    attack = build_attacks("decop[paraphraser=para]")[0]
    sample = Sample("s", PASSAGE, 1)
    signals = fixed_signals(attack, PASSAGE, PARAPHRASES)
    more = attack.more_requests([sample], signals)
    signals.update(Engine({None: long_target}, None, progress=False).run(more))
    got = attack.score([sample], Signals(signals))[0]

    texts = [PASSAGE, *(p.strip() for p in PARAPHRASES)]
    values = []
    for order in itertools.permutations(range(4)):
        prompt = written_question([texts[i] for i in order])
        assert len(tiny_tokenizer(prompt)["input_ids"]) < 500  # the whole question fits: nothing is cut
        probs = letter_probabilities(long_target.model, tiny_tokenizer, prompt)
        values.append(probs[order.index(0)])
        assert attack.order_score(prompt, "ABCD"[order.index(0)], signals) == pytest.approx(values[-1], abs=1e-5)
    want = float(np.mean(values))
    assert got == pytest.approx(want, rel=1e-5)
    assert attack.reference_score(sample, Signals(signals)) == pytest.approx(got, rel=1e-7)
    # the orders' values spread widely, so reading a wrong letter or option would show in the comparison above
    assert np.ptp(values) > 0.3


def test_a_model_blind_to_content_scores_one_quarter_whatever_its_position_bias():
    """The 24 orders put the verbatim option under each letter six times: a letter preference alone cancels."""
    attack = build_attacks("decop[paraphraser=para]")[0]
    sample = Sample("s", PASSAGE, 1)
    signals = fixed_signals(attack, PASSAGE, PARAPHRASES)
    bias = {" A": -0.05, " B": -3.0, " C": -6.0, " D": -9.0}
    signals.update({r: _letter_stats(bias[r.text]) for r in attack.more_requests([sample], signals)})
    assert attack.score([sample], Signals(signals))[0] == pytest.approx(0.25, abs=1e-12)
    favour = {r: _letter_stats(-0.01 if f"{r.text[1]}. {PASSAGE}" in r.context.split("\n") else -5.0)
              for r in attack.more_requests([sample], signals)}  # fmt: skip
    signals.update(favour)  # now the verbatim option's letter is likelier wherever it stands
    want = math.exp(-0.01) / (math.exp(-0.01) + 3 * math.exp(-5.0))
    assert attack.score([sample], Signals(signals))[0] == pytest.approx(want, rel=1e-6)


def test_exactly_24_distinct_orders_are_asked_with_four_letters_each():
    attack = build_attacks("decop[paraphraser=para]")[0]
    signals = fixed_signals(attack, PASSAGE, PARAPHRASES)
    more = attack.more_requests([Sample("s", PASSAGE, 1)], signals)
    assert len(more) == 24 * 4 and all(isinstance(r, TokenStatsRequest) and r.model is None for r in more)
    assert sorted({r.text for r in more}) == [" A", " B", " C", " D"]
    contexts = {r.context for r in more}
    assert len(contexts) == 24
    texts = [PASSAGE, *(p.strip() for p in PARAPHRASES)]
    orders = set()
    for context in contexts:
        assert context.startswith(HEAD) and context.endswith("\n\nAnswer:")
        shown = re.findall(r"^([ABCD])\. (.*)$", context[len(HEAD) :], flags=re.M)
        assert [letter for letter, _ in shown] == list("ABCD")
        orders.add(tuple(texts.index(option) for _, option in shown))
    assert orders == set(itertools.permutations(range(4)))
    # nothing new once the question signals are there: the runner's rounds stop
    assert all(r in more for r in attack.more_requests([Sample("s", PASSAGE, 1)], signals))


def test_generation_variant_counts_answers_naming_the_verbatim_letter():
    attack = build_attacks("decop[paraphraser=para,answer=generation]")[0]
    assert attack.needs() == frozenset({Capability.GENERATION})
    assert attack.column_name() == "decop[paraphraser=para,answer=generation]"
    sample = Sample("s", PASSAGE, 1)
    signals = fixed_signals(attack, PASSAGE, PARAPHRASES)
    more = attack.more_requests([sample], signals)
    assert len(more) == 24 and len({r.prompt for r in more}) == 24
    assert all(isinstance(r, GenerationRequest) and r.greedy and r.n == 1 and r.max_new_tokens <= 4 for r in more)
    texts = [PASSAGE, *(p.strip() for p in PARAPHRASES)]
    styles = [" {}", "{}.", " ({})", "{}) the river", "\n{}"]
    right = 0
    for i, request in enumerate(more):
        shown = re.findall(r"^([ABCD])\. (.*)$", request.prompt[len(HEAD) :], flags=re.M)
        verbatim = next(letter for letter, option in shown if option == texts[0])
        if i % 3 == 0:  # names the verbatim option, in assorted styles
            said = styles[i % len(styles)].format(verbatim)
            right += 1
        elif i % 3 == 1:  # names another option
            said = " " + next(c for c in "ABCD" if c != verbatim)
        else:  # names no option: a word starting with the letter, or prose
            said = [" " + verbatim + "anana", " The answer", ""][(i // 3) % 3]
        signals[request] = Generation((said,), ((),))
    got = attack.score([sample], Signals(signals))[0]
    assert right == 8 and got == pytest.approx(8 / 24)
    assert attack.reference_score(sample, Signals(signals)) == pytest.approx(got, abs=0)


@pytest.mark.parametrize(
    ("said", "letter"),
    [("B", "B"), (" C.", "C"), ("(D)", "D"), ("\n A) x", "A"), ("Answer", None), ("Banana", None), ("", None),
     ("b", None), ("E", None), ("A2", None)],
)  # fmt: skip
def test_answer_letter(said, letter):
    assert answer_letter(said) == letter


@pytest.mark.parametrize(
    "paraphrases",
    [
        ("", PARAPHRASES[1], PARAPHRASES[2]),  # one came back empty
        (PARAPHRASES[0], " \n", PARAPHRASES[2]),  # one is whitespace only
        (PARAPHRASES[0], PARAPHRASES[1], "  " + PASSAGE + "\n"),  # one is the passage itself
    ],
)
def test_unusable_paraphrases_score_nan_with_a_hint(paraphrases):
    attack = build_attacks("decop[paraphraser=para]")[0]
    good, bad = Sample("g", "A quite different passage of several words here.", 0), Sample("b", PASSAGE, 1)
    signals = fixed_signals(attack, PASSAGE, paraphrases)
    signals.update(fixed_signals(attack, good.text, PARAPHRASES))
    more = attack.more_requests([good, bad], signals)
    assert len(more) == 96 and all(PASSAGE not in r.context for r in more)  # the bad text asks nothing
    signals.update({r: _letter_stats(-1.0) for r in more})
    scores = attack.score([good, bad], Signals(signals))
    assert scores[0] == pytest.approx(0.25) and np.isnan(scores[1])
    assert math.isnan(attack.reference_score(bad, Signals(signals)))
    hint = attack.score_hint(scores)
    assert "empty or equal to the text" in hint and "'para'" in hint
    assert attack.score_hint(scores[:1]) is None


def test_spare_candidates_replace_unusable_paraphrases_in_the_order_sampled():
    attack = build_attacks("decop[paraphraser=para,candidates=6]")[0]
    assert attack.paraphrase_request(PASSAGE).n == 6
    sample = Sample("s", PASSAGE, 1)
    drawn = ("", PARAPHRASES[0], PASSAGE + " ", PARAPHRASES[1], PARAPHRASES[2], "A sixth one, never used.")
    signals = fixed_signals(attack, PASSAGE, drawn)
    assert attack.options(PASSAGE, signals) == [PASSAGE, *(p.strip() for p in PARAPHRASES)]
    three = build_attacks("decop[paraphraser=para]")[0]
    want = three.more_requests([sample], fixed_signals(three, PASSAGE, PARAPHRASES))
    assert attack.more_requests([sample], signals) == want  # the same 24 questions as with those three
    signals.update({r: _letter_stats(-1.0 - 0.1 * "ABCD".index(r.text[1])) for r in want})
    assert attack.score([sample], Signals(signals))[0] == pytest.approx(attack.reference_score(sample, signals))
    short = fixed_signals(attack, PASSAGE, ("", PARAPHRASES[0], PASSAGE, " ", PARAPHRASES[1], "\n"))
    assert attack.more_requests([sample], short) == [] and np.isnan(attack.score([sample], Signals(short))[0])
    assert "candidates" in attack.score_hint(np.array([np.nan]))


def test_a_text_of_one_word_asks_nothing_and_scores_nan():
    attack = build_attacks("decop[paraphraser=para]")[0]
    one, two = Sample("one", "  Hello ", 0), Sample("two", "Hello world", 0)
    assert attack.requests([one, two]) == [attack.paraphrase_request("Hello world")]
    assert np.isnan(attack.score([one], Signals({}))[0]) and math.isnan(attack.reference_score(one, {}))


def _letter_stats(logprob: float) -> TokenStats:
    """One scored token with log-prob ``logprob`` (what a letter after the question is)."""
    names = [f.name for f in dataclasses.fields(TokenStats)]
    return TokenStats.from_arrays({n: np.array([5 if n in ("token_ids", "rank") else logprob]) for n in names})


def test_paraphrase_request_and_its_budget():
    attack = build_attacks("decop[paraphraser=para,max_new_tokens=50,temperature=0.9,seed=3]")[0]
    six = "one two three four five six"
    request = attack.paraphrase_request("  " + six + "\n")
    assert (request.n, request.temperature, request.seed, request.model) == (3, 0.9, 3, "para")
    assert not request.greedy and six in request.prompt and request.prompt.index(six) > 0
    assert request.max_new_tokens == 12  # two per word
    assert attack.paraphrase_request("word " * 40).max_new_tokens == 50  # at most max_new_tokens
    assert attack.paraphrase_request("a b").max_new_tokens == 8  # at least 8
    attack.observe({None: ModelFacts(64, "t"), "para": ModelFacts(16, "t")})
    assert attack.paraphrase_request("word " * 40).max_new_tokens == 8  # half the paraphraser's context


def test_paraphrases_come_from_the_named_model_seeded(long_target, tiny_tokenizer, tiny_model):
    paraphraser = HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="para")
    attack = build_attacks("decop[paraphraser=para,max_new_tokens=12]")[0]
    assert attack.models() == ("para",)
    samples = [Sample("a", PASSAGE, 1), Sample("b", "Bread and iron from the market by the bridge.", 0)]

    def run():
        engine = Engine({None: long_target, "para": paraphraser}, None, progress=False)
        signals = collect_signals(engine, [attack], samples)
        return signals, attack.score(samples, signals)

    first, scores = run()
    again, scores_again = run()
    for s in samples:
        generation = first[attack.paraphrase_request(s.text)]
        assert len(generation.texts) == 3 and len(set(generation.texts)) == 3
        assert generation == again[attack.paraphrase_request(s.text)]
    np.testing.assert_array_equal(scores, scores_again)
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()
    want = [attack.reference_score(s, first) for s in samples]
    np.testing.assert_allclose(scores, want, rtol=1e-7)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("decop", "--reference MODEL"),
        ("decop[paraphraser=p,answer=votes]", "answer must be one of logprobs, generation"),
        ("decop[paraphraser=p,temperature=0]", "temperature must be positive"),
        ("decop[paraphraser=p,max_new_tokens=0]", "max_new_tokens must be an integer of at least 1"),
        ("decop[paraphraser=p,seed=-1]", "seed must be an integer of at least 0"),
        ("decop[paraphraser=p,candidates=2]", "candidates must be an integer of at least 3"),
    ],
)
def test_bad_parameters_are_one_clear_error(spec, problem):
    with pytest.raises(MiakitError, match=re.escape(problem)) as info:
        build_attacks(spec)
    assert str(info.value).startswith("Bad parameters for attack 'decop'")


def test_declared_facts():
    cls = ATTACKS["decop"]
    assert cls.model_param == "paraphraser" and not cls.in_all
    assert cls().needs() == frozenset({Capability.TOPK_LOGPROBS})
    assert {"weak_on_tiny_models", "planted_cannot_express"} <= set(cls.tags)


def test_audit_writes_decop_columns(tiny_model_dir, tmp_path, cache_dir):
    texts = [
        "The king and the queen walked to the river at night.",
        "Bread and iron from the market by the bridge in winter.",
        "A letter from the doctor reached the village by the morning ship.",
        "Silver candles in the tower window during the summer storm.",
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "run"
    specs = ["decop[max_new_tokens=12]", "decop[answer=generation,max_new_tokens=12]"]
    code = run_cli(
        "audit", "--model", tiny_model_dir, "--reference", tiny_model_dir, "--data", data, "--attacks",
        ",".join(specs), "--out", out, "--bootstrap", "0", "--no-progress",
    )  # fmt: skip
    # the paraphraser comes from --reference; two decop columns show the value in which they differ
    columns = ["decop[answer=logprobs,max_new_tokens=12]", "decop[answer=generation,max_new_tokens=12]"]
    assert code == 0
    results, scores, _ = read_run(out)
    assert set(columns) <= set(scores.columns) and set(columns) <= set(results["attacks"])
    assert not results["skipped"] and len(scores) == 4
    values = scores[columns].to_numpy(dtype=float)
    assert np.isfinite(values).all() and ((values >= 0) & (values <= 1)).all()
    assert (values[:, 0] > 0).all()  # a renormalised probability, never exactly 0
    assert set(np.round(values[:, 1] * 24, 9)) <= set(range(25))  # a share of the 24 orders
