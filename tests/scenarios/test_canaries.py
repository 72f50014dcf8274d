"""Canaries: generation, file round trip and the exposure formula of Carlini et al. (2019)."""

from __future__ import annotations

import math

import pytest

from miakit.errors import DataError
from miakit.scenarios.canaries import exposure, make_canaries, read_canaries, training_texts, write_canaries


def test_canaries_have_distinct_prefixes_and_candidates_without_the_secret():
    canaries = make_canaries((1, 4, 16), n_candidates=64, seed=5)
    assert [c.repeats for c in canaries] == [1, 4, 16]
    assert len({c.prefix for c in canaries}) == 3
    for c in canaries:
        assert len(c.candidates) == 63 and c.secret not in c.candidates
        assert len(set(c.candidates)) == 63
        assert all(len(s) == len(c.secret) and s.startswith(" ") for s in c.candidates)
    assert make_canaries((1, 4, 16), n_candidates=64, seed=5) == canaries
    texts = training_texts(canaries)
    assert len(texts) == 21 and texts.count(canaries[2].text) == 16


def test_canaries_round_trip_through_a_file(tmp_path):
    canaries = make_canaries((2, 3), n_candidates=10, seed=1)
    write_canaries(tmp_path / "c.jsonl", canaries)
    assert read_canaries(tmp_path / "c.jsonl") == canaries
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "prefix": "p"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1"):
        read_canaries(tmp_path / "bad.jsonl")


def test_exposure_is_log2_n_minus_log2_rank_with_ties_against_the_secret():
    first = exposure(-1.0, [-5.0, -3.0, -2.0])
    assert first["rank"] == 1 and first["n_candidates"] == 4
    assert first["exposure"] == pytest.approx(2.0) and first["max_exposure"] == pytest.approx(2.0)
    last = exposure(-9.0, [-5.0, -3.0, -2.0])
    assert last["rank"] == 4 and last["exposure"] == pytest.approx(0.0)
    tied = exposure(-3.0, [-5.0, -3.0, -2.0])
    assert tied["rank"] == 3 and tied["exposure"] == pytest.approx(2 - math.log2(3))
    with pytest.raises(ValueError):
        exposure(float("nan"), [-1.0])
