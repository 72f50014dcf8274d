"""The runner: signals in rounds until no attack asks for more (a limit is an error, never a silent stop), and
blind-baseline scores stored under the data's hash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from miakit.attacks import Attack
from miakit.data import MembershipDataset, Sample
from miakit.errors import MiakitError
from miakit.evaluate import blind_baselines
from miakit.run.baselines import BlindScores, blind_key
from miakit.run.runner import collect_signals, score_attacks
from miakit.signals import TokenStatsRequest
from miakit.signals.engine import Engine
from miakit.signals.store import Store
from miakit.targets.capability import Capability
from miakit.targets.hf_causal import HFCausalLM


class Chain(Attack):
    """Asks, after each round, for the statistics of its text with one more '!' (up to ``depth``)."""

    name = "chain"
    requires = frozenset({Capability.TOPK_LOGPROBS})

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [TokenStatsRequest(s.text) for s in samples]

    def more_requests(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> list[Any]:
        out = []
        for s in samples:
            k = max(n for n in range(self.depth + 1) if TokenStatsRequest(s.text + "!" * n) in signals)
            if k < self.depth:
                out.append(TokenStatsRequest(s.text + "!" * (k + 1)))
        return out

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        stats = [signals[TokenStatsRequest(s.text + "!" * self.depth)] for s in samples]
        return np.array([float(np.mean(st.logprob)) for st in stats])


@pytest.fixture
def engine(tiny_model, tiny_tokenizer):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="tiny")
    return Engine({None: target}, None, progress=False)


SAMPLES = [Sample("a", "The king and the queen.", 1), Sample("b", "The river and the stone.", 0)]


def test_rounds_continue_until_no_attack_asks(engine):
    signals = collect_signals(engine, [Chain(depth=4)], SAMPLES)
    assert all(TokenStatsRequest(s.text + "!!!!") in signals for s in SAMPLES)
    scores = score_attacks(engine, {"chain": Chain(depth=4)}, SAMPLES)["chain"]
    assert np.isfinite(scores).all()


def test_a_round_limit_is_an_error_naming_the_attack(engine):
    with pytest.raises(MiakitError, match=r"chain\[depth=12\] still asked for new signals after 10"):
        collect_signals(engine, [Chain(depth=12)], SAMPLES)
    collect_signals(engine, [Chain(depth=12)], SAMPLES, max_rounds=12)  # enough rounds: no error


def _data(n: int = 24) -> MembershipDataset:
    from miakit.scenarios import load_bundled_passages

    texts = [p["text"] for p in load_bundled_passages()[:n]]
    return MembershipDataset([Sample(f"s{i}", t, i % 2) for i, t in enumerate(texts)], "test")


def test_blind_scores_are_stored_and_read_back(tmp_path):
    data, store = _data(), Store(tmp_path / "store")
    first = BlindScores(data, 0, store)
    assert not first.cached
    computed = first.start(concurrent=False).result()
    labels = np.array(data.labels)
    expected = blind_baselines(data.texts, labels, seed=0, groups=[s.document for s in data.samples])
    assert set(computed) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(computed[name], expected[name])
    again = BlindScores(data, 0, store)
    assert again.cached  # read from the store: nothing computed
    for name in expected:
        np.testing.assert_array_equal(again.result()[name], expected[name])
    assert blind_key(data, 1) != blind_key(data, 0)  # another seed is another entry
    flipped = MembershipDataset([Sample(s.id, s.text, 1 - s.label) for s in data.samples], "test")
    assert blind_key(flipped, 0) != blind_key(data, 0)  # so are other labels


def test_blind_scores_in_a_background_thread_equal_the_inline_ones(tmp_path):
    data = _data()
    inline = BlindScores(data, 3).start(concurrent=False).result()
    background = BlindScores(data, 3, Store(tmp_path / "s")).start(concurrent=True).result()
    for name in inline:
        np.testing.assert_array_equal(background[name], inline[name])


def test_unlabelled_data_has_no_blind_scores():
    data = MembershipDataset([Sample(str(i), f"text {i}") for i in range(6)], "test")
    assert BlindScores(data, 0).start(concurrent=True).result() == {}
