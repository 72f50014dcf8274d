"""Canaries: generation, file round trip and the exact and extrapolated exposure of Carlini et al. (2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import skewnorm

from miakit.errors import DataError
from miakit.scenarios.canaries import Canary, exposure, make_canaries, read_canaries, training_texts, write_canaries


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
    assert first["extrapolated_exposure"] is None and "no skew-normal fit" in first["note"]  # 3 candidates: too few


def test_space_size_is_ten_to_the_digits_and_unknown_for_other_secrets():
    (canary,) = make_canaries((1,), n_candidates=8, digits=6)
    assert canary.space_size == 10**6
    assert Canary("c", "The word is", " swordfish", 1, (" marlin",)).space_size is None


def test_extrapolated_exposure_recovers_the_tail_probability_of_a_known_skew_normal():
    """Candidates' log-perplexities drawn from a known skew-normal; the secret sits at its 1e-4 quantile, so the
    true exposure is -log2(1e-4) = 13.3 bits, far beyond the exact rank's cap of log2(1000) = 10 bits."""
    rng = np.random.default_rng(7)
    shape, loc, scale = -3.0, 30.0, 4.0
    true_p = 1e-4
    secret_ll = -skewnorm.ppf(true_p, shape, loc, scale)
    candidates_ll = -skewnorm.rvs(shape, loc, scale, size=999, random_state=rng)
    got = exposure(secret_ll, candidates_ll, space_size=10**6)
    # null spread of the estimate (300 draws of 999 candidates): |error| median 0.45, 99% 1.5, max 2.1 bits;
    # a natural-log or wrong-tail slip is off by 4 or 13 bits
    assert got["extrapolated_exposure"] == pytest.approx(-math.log2(true_p), abs=2.5)
    assert got["skewnorm_shape"] < 0 and got["skewnorm_loc"] == pytest.approx(loc, abs=1.0)
    assert got["rank"] == 1 + int(np.sum(candidates_ll >= secret_ll)) and got["note"] is None


def test_extrapolated_exposure_exceeds_log2_n_and_is_capped_at_the_space_size():
    """N = 128 normal candidates: a secret ranked first has exact exposure 7 bits whether it sits 4 or 60 standard
    deviations above them; the extrapolated exposure tells them apart (true tails: 14.9 bits, then far beyond the
    10**6 secrets, so log2(10**6) = 19.9 bits)."""
    rng = np.random.default_rng(1)
    candidates_ll = rng.normal(-30.0, 4.0, size=127)
    cap = math.log2(10**6)
    four_sigma = exposure(-30.0 + 4 * 4.0, candidates_ll, space_size=10**6)
    far = exposure(-30.0 + 60 * 4.0, candidates_ll, space_size=10**6)
    assert four_sigma["rank"] == far["rank"] == 1
    assert four_sigma["exposure"] == far["exposure"] == pytest.approx(7.0)
    # 300 draws of 127 candidates: the 4-sigma estimate ranged 9.4-19.9 bits (1% quantile 10.0), never near 7
    assert 8.0 < four_sigma["extrapolated_exposure"] <= cap
    assert far["extrapolated_exposure"] == pytest.approx(cap) and far["max_extrapolated_exposure"] == pytest.approx(cap)
    uncapped = exposure(-30.0 + 60 * 4.0, candidates_ll)
    assert uncapped["max_extrapolated_exposure"] is None and uncapped["extrapolated_exposure"] > cap + 10


def test_non_finite_candidates_are_counted_ranked_last_and_left_out_of_the_fit():
    rng = np.random.default_rng(3)
    finite = rng.normal(-20.0, 2.0, size=40)
    candidates = [*finite, float("-inf"), float("nan"), float("inf")]
    secret = float(np.sort(finite)[-5])  # four finite candidates are at least as likely
    got = exposure(secret, candidates, space_size=10**6)
    assert got["n_candidates"] == 44 and got["n_nonfinite_candidates"] == 3
    assert got["rank"] == 1 + 4 + 1  # +1: the secret's own value among the finite ones (a tie counts against it)
    assert got["exposure"] == pytest.approx(math.log2(44) - math.log2(6))
    shape, loc, scale = skewnorm.fit(-finite)
    assert (got["skewnorm_shape"], got["skewnorm_loc"], got["skewnorm_scale"]) == pytest.approx((shape, loc, scale))
    assert got["extrapolated_exposure"] == pytest.approx(-math.log2(skewnorm.cdf(-secret, shape, loc, scale)))
    assert "3 candidate log-likelihood(s) not finite" in got["note"]


@pytest.mark.parametrize("secret", [float("-inf"), float("nan")])
def test_a_non_finite_secret_is_ranked_last_with_zero_exposure_and_a_note(secret):
    candidates = list(np.random.default_rng(4).normal(-20.0, 2.0, size=30))
    got = exposure(secret, candidates, space_size=10**6)
    assert got["rank"] == got["n_candidates"] == 31
    assert got["exposure"] == 0.0 and got["extrapolated_exposure"] == 0.0
    assert "secret log-likelihood" in got["note"]


def test_console_and_html_reports_show_the_extrapolated_exposure_and_notes():
    import pandas as pd
    from rich.console import Console

    from miakit.report.console import canary_table
    from miakit.report.html import build_html

    candidates = [*np.random.default_rng(5).normal(-30.0, 4.0, size=126), float("nan")]
    new = {"id": "canary-0", "repeats": 16, "prefix": "The PIN is", "secret": " 123456"}
    new.update(exposure(-30.0 + 5 * 4.0, candidates, space_size=10**6))
    old = {"id": "canary-1", "repeats": 1, "prefix": "The PIN is", "secret": " 654321", "rank": 64}
    old.update(n_candidates=128, exposure=1.0, max_exposure=7.0)  # a results.json written before the new column
    shown = f"{new['extrapolated_exposure']:.2f}"
    assert new["extrapolated_exposure"] > 7.0 and new["rank"] == 1

    console = Console(record=True, width=250)
    console.print(canary_table([new, old]))
    text = console.export_text()
    assert "extrapolated (bits)" in text and shown in text
    assert "canary-0: 1 candidate log-likelihood(s) not finite" in text

    scores = pd.DataFrame({"id": ["a", "b"], "label": [1, 0]})
    html = build_html({"attacks": {}, "canaries": [new, old]}, scores, {}, b"")
    assert "<th>extrapolated (bits)</th>" in html
    assert f"{shown} / {math.log2(10**6):.2f}" in html and "1 candidate log-likelihood(s) not finite" in html
