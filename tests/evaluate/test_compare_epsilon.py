"""Paired bootstrap comparison of attacks and the epsilon lower bound, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from miakit.evaluate.compare import paired_auroc_comparison
from miakit.evaluate.epsilon import clopper_pearson, epsilon_lower_bound


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    labels = np.array([1] * 15 + [0] * 17)
    strong = labels * 1.5 + rng.normal(size=32)
    weak = labels * 0.4 + rng.normal(size=32)
    return labels, {"strong": strong, "weak": weak, "noise": rng.normal(size=32)}


def test_paired_comparison_matches_a_plain_loop_over_the_same_resamples(data):
    labels, columns = data
    got = paired_auroc_comparison(labels, columns, n_bootstrap=200, seed=7)
    assert got["best"] == "strong"
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rng = np.random.default_rng(7)
    pos_draws = pos[rng.integers(0, len(pos), size=(200, len(pos)))]
    neg_draws = neg[rng.integers(0, len(neg), size=(200, len(neg)))]
    y = np.array([1] * len(pos) + [0] * len(neg))

    def boot(scores):
        return np.array(
            [
                roc_auc_score(y, np.concatenate([scores[p], scores[n]]))
                for p, n in zip(pos_draws, neg_draws, strict=True)
            ]
        )

    for name in ("weak", "noise"):
        diff = boot(columns["strong"]) - boot(columns[name])
        pair = got["pairs"][name]
        observed = roc_auc_score(labels, columns["strong"]) - roc_auc_score(labels, columns[name])
        assert pair["auroc_difference"] == pytest.approx(observed)
        assert pair["ci_low"] == pytest.approx(np.quantile(diff, 0.025))
        assert pair["ci_high"] == pytest.approx(np.quantile(diff, 0.975))
        tail = min((diff <= 0).sum(), (diff >= 0).sum())
        assert pair["p_value"] == pytest.approx(min(1.0, 2 * (tail + 1) / 201))


def test_identical_attacks_do_not_differ(data):
    labels, columns = data
    got = paired_auroc_comparison(labels, {"a": columns["weak"], "b": columns["weak"].copy()}, n_bootstrap=100)
    pair = next(iter(got["pairs"].values()))
    assert pair["auroc_difference"] == 0 and pair["ci_low"] == 0 and pair["ci_high"] == 0 and pair["p_value"] == 1


def test_clopper_pearson_matches_scipy():
    for k, n in ((0, 20), (3, 20), (20, 20), (57, 140)):
        want = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((want.low, want.high))


def test_epsilon_of_a_perfect_attack_is_limited_by_the_sample_size():
    labels = np.array([1] * 100 + [0] * 100)
    scores = labels.astype(float)
    got = epsilon_lower_bound(labels, scores, fpr_budget=0.05)
    tpr_lo, fpr_hi = 0.025 ** (1 / 100), 1 - 0.025 ** (1 / 100)
    assert got["true_positives"] == 100 and got["false_positives"] == 0
    assert got["epsilon_lower_bound"] == pytest.approx(math.log(tpr_lo / fpr_hi))
    assert "randomised split" in got["assumptions"]


def test_epsilon_follows_the_formula_at_the_chosen_point():
    rng = np.random.default_rng(0)
    labels = np.array([1] * 200 + [0] * 200)
    scores = labels * 1.0 + rng.normal(size=400)
    got = epsilon_lower_bound(labels, scores, fpr_budget=0.1, delta=1e-3)
    tp, fp = got["true_positives"], got["false_positives"]
    assert fp <= 20 and got["fpr"] == fp / 200 and got["tpr"] == tp / 200
    lo = binomtest(tp, 200).proportion_ci(method="exact").low
    hi = binomtest(fp, 200).proportion_ci(method="exact").high
    want = max(0.0, math.log((lo - 1e-3) / hi), math.log((1 - hi - 1e-3) / (1 - lo)))
    assert got["epsilon_lower_bound"] == pytest.approx(want)
    # no better threshold with FPR <= 0.1 exists
    best_tp = max(
        int(((scores >= t) & (labels == 1)).sum()) for t in scores if ((scores >= t) & (labels == 0)).sum() <= 20
    )
    assert tp == best_tp


def test_a_chance_attack_proves_nothing():
    labels = np.array([1, 0] * 50)
    got = epsilon_lower_bound(labels, np.random.default_rng(1).normal(size=100))
    assert got["epsilon_lower_bound"] < 0.5


def test_run_figures_follow_the_nan_policy():
    """Under nan_policy "omit" the epsilon bound and the paired comparison leave out what the metrics leave
    out (the comparison: samples any compared attack failed on); under "lowest" they keep every sample."""
    from miakit.evaluate import EvaluationSettings, evaluate_run

    rng = np.random.default_rng(5)
    labels = np.r_[np.ones(60, dtype=int), np.zeros(60, dtype=int)]
    strong = labels + rng.normal(scale=0.7, size=120)
    weak = labels * 0.2 + rng.normal(size=120)
    strong[:6] = np.nan  # six members the strong attack could not score
    weak[100:103] = np.nan  # three non-members the weak one could not
    columns = {"strong": strong, "weak": weak}
    dropped = [*range(6), 100, 101, 102]
    for policy, n_members, n_rows in (("omit", 54, 111), ("lowest", 60, 120)):
        settings = EvaluationSettings(n_bootstrap=50, seed=0, nan_policy=policy)
        run = evaluate_run(labels, columns, blind={}, settings=settings)
        eps = run.epsilon
        assert eps["attack"] == "strong" and eps["n_members"] == n_members and eps["n_nonmembers"] == 60
        comparison = run.comparison
        expected = paired_auroc_comparison(
            labels if policy == "lowest" else np.delete(labels, dropped),
            {c: (s if policy == "lowest" else np.delete(s, dropped)) for c, s in columns.items()},
            best="strong",
            n_bootstrap=50,
            seed=0,
        )
        assert comparison["pairs"] == expected["pairs"]
        assert comparison.get("n_omitted", 0) == 120 - n_rows


def holm_by_definition(p):
    """Adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)), ranks from 1, by plain loops."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    for rank, i in enumerate(order, start=1):
        out[i] = max(min(1.0, (m - j + 1) * p[order[j - 1]]) for j in range(1, rank + 1))
    return out


def test_holm_adjustment_matches_its_definition():
    from miakit.evaluate.compare import holm_adjust

    for p in ([0.01, 0.04, 0.03, 0.2], [0.5, 0.001, 0.001, 0.9, 0.02], [0.3]):
        assert holm_adjust(p).tolist() == pytest.approx(holm_by_definition(p))


def test_comparison_reports_raw_and_holm_p_values():
    rng = np.random.default_rng(11)
    labels = np.r_[np.ones(80, dtype=int), np.zeros(80, dtype=int)]
    columns = {f"a{i}": labels * (0.1 * i) + rng.normal(size=160) for i in range(6)}
    got = paired_auroc_comparison(labels, columns, n_bootstrap=300, seed=2)
    names = list(got["pairs"])
    raw = [got["pairs"][n]["p_value"] for n in names]
    assert [got["pairs"][n]["p_value_holm"] for n in names] == pytest.approx(holm_by_definition(raw))
    assert got["adjustment"] == f"Holm over 5 comparison(s) with {got['best']}"
    assert any(got["pairs"][n]["p_value_holm"] > got["pairs"][n]["p_value"] for n in names)


def chunked(seed=0, n_docs=30, chunks=8):
    """Two attacks on chunked documents: each attack's chunk scores share a per-document effect (sd 1)."""
    rng = np.random.default_rng(seed)
    doc_labels = np.r_[np.ones(n_docs, dtype=int), np.zeros(n_docs, dtype=int)]
    labels = np.repeat(doc_labels, chunks)
    effects = np.repeat(rng.normal(size=(2, 2 * n_docs)), chunks, axis=1)
    groups = [f"d{i:02d}" for i in np.repeat(np.arange(2 * n_docs), chunks)]
    a = effects[0] + 0.6 * labels + 0.5 * rng.normal(size=len(labels))
    b = effects[1] + 0.3 * labels + 0.5 * rng.normal(size=len(labels))
    return labels, {"a": a, "b": b}, groups


def test_paired_comparison_resamples_documents():
    labels, columns, groups = chunked()
    grouped = paired_auroc_comparison(labels, columns, best="a", n_bootstrap=300, seed=1, groups=groups)
    plain = paired_auroc_comparison(labels, columns, best="a", n_bootstrap=300, seed=1)
    g, p = grouped["pairs"]["b"], plain["pairs"]["b"]
    assert g["auroc_difference"] == p["auroc_difference"]
    assert grouped["bootstrap_unit"] == "document" and plain["bootstrap_unit"] == "sample"
    assert g["ci_high"] - g["ci_low"] > 1.5 * (p["ci_high"] - p["ci_low"])  # measured: 2.27 times wider
    # the same draws by hand: documents (sorted by name) per class, all their chunks, AUROC by scikit-learn
    docs = {c: sorted({d for d, y in zip(groups, labels, strict=True) if y == c}) for c in (1, 0)}
    rng = np.random.default_rng(1)
    draws = {c: rng.integers(0, len(docs[c]), size=(300, len(docs[c]))) for c in (1, 0)}
    where = {d: np.flatnonzero(np.asarray(groups) == d) for d in groups}
    diffs = []
    for r in range(300):
        rows = np.concatenate([where[docs[c][d]] for c in (1, 0) for d in draws[c][r]])
        diffs.append(roc_auc_score(labels[rows], columns["a"][rows]) - roc_auc_score(labels[rows], columns["b"][rows]))
    assert (g["ci_low"], g["ci_high"]) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))


def test_epsilon_counts_documents_on_their_mean_chunk_score():
    import pandas as pd

    labels, columns, groups = chunked(seed=3)
    scores = columns["a"].copy()
    scores[0] = np.nan  # one chunk of a member document: left out of its mean
    got = epsilon_lower_bound(labels, scores, groups=groups)
    frame = pd.DataFrame({"doc": groups, "label": labels, "score": scores}).groupby("doc", sort=False)
    per_doc = frame.agg(label=("label", "first"), score=("score", "mean"))  # pandas' mean skips NaN
    want = epsilon_lower_bound(per_doc["label"].to_numpy(), per_doc["score"].to_numpy())
    assert got["n_members"] == 30 and got["n_nonmembers"] == 30 and got["trials"].startswith("documents")
    for key in ("epsilon_lower_bound", "true_positives", "false_positives", "threshold"):
        assert got[key] == want[key]
    per_sample = epsilon_lower_bound(labels, np.nan_to_num(scores, nan=-1e9))
    assert per_sample["n_members"] == 240 and per_sample["trials"].startswith("samples")
