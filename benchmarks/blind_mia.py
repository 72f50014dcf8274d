"""Blind baselines on the blind-baseline paper's own datasets, beside the figures the paper reports.

Run by hand on a clone of github.com/ethz-spylab/Blind-MIA (its data/ folder is read as it is):

    .venv/bin/python benchmarks/blind_mia.py --clone PATH [--datasets multi_web,laion_mi,gutenberg,arxiv1m]

For each dataset it runs ``miakit.api.blind`` (5-fold out-of-fold scores, bootstrap CIs) and prints AUROC and
TPR at 1% FPR of blind_bow, blind_date and blind_ngram, the best published blind figure (Das et al. 2024,
Table 1 of the repository README) and the seconds taken. Also ``--tfidf-only`` adds the single TF-IDF +
logistic-regression view, to show what the stacked ensemble adds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

# Das, Zhang & Tramer 2024 (ethz-spylab/Blind-MIA README): best blind attack, AUROC and TPR@1%FPR, in percent.
PAPER = {
    "multi_web": {"auroc": 98.0, "tpr_at_1pct_fpr": 93.0},
    "laion_mi": {"auroc": None, "tpr_at_1pct_fpr": 8.9},
    "gutenberg": {"auroc": 96.1, "tpr_at_1pct_fpr": 55.1},
    "arxiv1m": {"auroc": 72.3, "tpr_at_1pct_fpr": 10.6},
    "arxiv1m_1m": {"auroc": None, "tpr_at_1pct_fpr": 2.7},
}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clone", required=True, help="clone of ethz-spylab/Blind-MIA (or its data/ folder)")
    parser.add_argument("--datasets", default="multi_web,laion_mi,gutenberg,arxiv1m")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--tfidf-only", action="store_true", help="also the single TF-IDF + LR view")
    args = parser.parse_args()

    from miakit.api import blind
    from miakit.data.benchmarks import load_benchmark

    print("dataset      baseline        AUROC [95% CI]         TPR@1%FPR   paper AUROC / TPR@1%   seconds")
    for name in args.datasets.split(","):
        data = load_benchmark(f"blind-mia:{name}", path=args.clone)
        started = time.perf_counter()
        result = blind(data, bootstrap=args.bootstrap, write=False)
        seconds = time.perf_counter() - started
        paper = PAPER.get(name, {})
        for baseline, row in result.results["attacks"].items():
            auroc, tpr = row["auroc"], row["tpr_at_1pct_fpr"]
            ci = f"[{auroc['ci_low']:.3f}, {auroc['ci_high']:.3f}]" if auroc.get("ci_low") is not None else ""
            print(
                f"{name:12s} {baseline:15s} {auroc['value']:.3f} {ci:17s} {_fmt(tpr.get('value')):>9s}   "
                f"{paper.get('auroc') or '—'!s:>5s} / {paper.get('tpr_at_1pct_fpr') or '—'!s:5s}   {seconds:7.1f}"
            )
        if args.tfidf_only:
            _tfidf_only(name, data)
        print(f"{name:12s} n = {len(data)} ({sum(data.labels)} members)")


def _tfidf_only(name: str, data: object) -> None:
    """The single TF-IDF + logistic-regression view, out-of-fold on the same folds."""
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline

    from miakit.evaluate import evaluate_scores
    from miakit.evaluate.blind import BlindEnsemble
    from miakit.evaluate.folds import stratified_folds

    texts, y = data.texts, np.asarray(data.labels)  # type: ignore[attr-defined]
    started = time.perf_counter()
    pipeline = make_pipeline(*BlindEnsemble()._views(texts)["tfidf_logistic"])
    folds = stratified_folds(y, 5, 0)
    scores = cross_val_predict(pipeline, texts, y, cv=folds, method="predict_proba")[:, 1]
    metrics = evaluate_scores(y, scores, n_bootstrap=0).metrics
    print(
        f"{name:12s} {'tfidf+LR only':15s} {metrics['auroc'].value:.3f} {'':17s} "
        f"{_fmt(metrics['tpr_at_1pct_fpr'].value):>9s}   {'':13s}   {time.perf_counter() - started:7.1f}"
    )


if __name__ == "__main__":
    main()
