"""The reference attack when the reference model's tokenizer is not the target's: compared per UTF-8 byte."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cli_helpers import run_cli
from lm_helpers import make_model, make_tokenizer, synthetic_texts
from miakit.attacks import ATTACKS
from miakit.attacks.reference import PER_BYTE_NOTE
from miakit.data import Sample
from miakit.report import read_run
from miakit.run.runner import collect_signals
from miakit.signals.engine import Engine
from miakit.targets.hf_causal import HFCausalLM

TEXTS = synthetic_texts(16, seed=41, min_words=4, max_words=12)
TEXTS[0] = "Café naïve — the king’s river, 北京 and a horse."  # multi-byte characters: bytes != characters


@pytest.fixture(scope="module")
def other_tokenizer():
    """A byte-level BPE of another vocabulary size, trained on other texts: a different tokenizer."""
    return make_tokenizer(synthetic_texts(300, seed=999), vocab_size=280)


@pytest.fixture(scope="module")
def other_model(other_tokenizer):
    return make_model(len(other_tokenizer), seed=3)


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory, other_model, other_tokenizer):
    path = tmp_path_factory.mktemp("other-tokenizer-model")
    other_model.save_pretrained(path)
    other_tokenizer.save_pretrained(path)
    return path


def sum_logprob(model, tokenizer, text: str) -> float:
    """Sum of log p(token | earlier tokens) over every token but the first, in plain float64 torch."""
    ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return math.fsum(float(logp[j - 1, ids[j]]) for j in range(1, len(ids)))


def per_byte(target, target_tok, reference, reference_tok, text: str) -> float:
    """-(sum NLL_target - sum NLL_ref) / UTF-8 length, written from the definition."""
    nll_target = -sum_logprob(target, target_tok, text)
    nll_reference = -sum_logprob(reference, reference_tok, text)
    return -(nll_target - nll_reference) / len(text.encode("utf-8"))


def test_other_tokenizer_scores_per_byte(tiny_model, tiny_tokenizer, other_model, other_tokenizer):
    assert len(tiny_tokenizer) != len(other_tokenizer)
    samples = [Sample(f"s{i}", t, i % 2) for i, t in enumerate(TEXTS)]
    engine = Engine(
        {
            None: HFCausalLM.from_model(tiny_model, tiny_tokenizer),
            "ref": HFCausalLM.from_model(other_model, other_tokenizer),
        },
        None,
        progress=False,
    )
    attack = ATTACKS["reference"](model="ref")
    scores = attack.score(samples, collect_signals(engine, [attack], samples))
    want = [per_byte(tiny_model, tiny_tokenizer, other_model, other_tokenizer, s.text) for s in samples]
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-6)
    assert attack.notes() == [PER_BYTE_NOTE]


def test_same_tokenizer_keeps_per_token_means(tiny_model, tiny_tokenizer):
    reference_model = make_model(len(tiny_tokenizer), seed=5)
    samples = [Sample(f"s{i}", t, i % 2) for i, t in enumerate(TEXTS)]
    engine = Engine(
        {
            None: HFCausalLM.from_model(tiny_model, tiny_tokenizer),
            "ref": HFCausalLM.from_model(reference_model, tiny_tokenizer),
        },
        None,
        progress=False,
    )
    attack = ATTACKS["reference"](model="ref")
    scores = attack.score(samples, collect_signals(engine, [attack], samples))
    n = [len(tiny_tokenizer(s.text)["input_ids"]) - 1 for s in samples]
    want = [
        (sum_logprob(tiny_model, tiny_tokenizer, s.text) - sum_logprob(reference_model, tiny_tokenizer, s.text)) / k
        for s, k in zip(samples, n, strict=True)
    ]
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-6)
    assert attack.notes() == []


def write_data(path):
    path.write_text("".join(json.dumps({"id": f"s{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(TEXTS)))
    return path


def test_cli_says_it_compares_per_byte(
    tiny_model_dir,
    other_model_dir,
    tiny_model,
    tiny_tokenizer,
    other_model,
    other_tokenizer,
    tmp_path,
    cache_dir,
    capsys,
):
    out = tmp_path / "run"
    code = run_cli(
        "audit", "--model", tiny_model_dir, "--data", write_data(tmp_path / "data.jsonl"), "--reference",
        other_model_dir, "--attacks", "loss,reference", "--out", out, "--bootstrap", "20", "--no-progress",
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.out + captured.err
    results, scores, _ = read_run(out)
    assert f"reference: {PER_BYTE_NOTE}" in results["warnings"]
    assert PER_BYTE_NOTE in " ".join((captured.out + captured.err).split())
    want = [per_byte(tiny_model, tiny_tokenizer, other_model, other_tokenizer, t) for t in TEXTS]
    got = scores.set_index("id").loc[[f"s{i}" for i in range(len(TEXTS))], "reference"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
