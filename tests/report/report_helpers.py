"""Builders of a synthetic finished run (scores, results, manifest) with hostile strings in it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from miakit.evaluate import blind_warning, evaluate_scores
from miakit.report import build_results

HOSTILE = "<script>alert(1)</script>"


def synthetic_scores(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """id, label, then attack columns of varying strength, some NaN and inf, and the blind baseline."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2, dtype=int), np.zeros(n - n // 2, dtype=int)]
    ids = [f"doc-{i}" for i in range(n)]
    ids[0] = HOSTILE  # a hostile sample id
    ids[1] = "NA"  # must stay a string through CSV
    loss = rng.normal(size=n) + 1.0 * labels
    loss[[2, n - 1]] = np.nan
    loss[3] = np.inf
    return pd.DataFrame(
        {
            "id": ids,
            "label": labels,
            "loss": loss,
            "min_k[k=0.1]": rng.normal(size=n) + 0.5 * labels,
            "reference[model=gpt2]": rng.normal(size=n) + 2.0 * labels,
            HOSTILE: rng.normal(size=n),
            "blind_bow": np.clip(0.5 + 0.3 * labels + 0.1 * rng.normal(size=n), 0, 1),
        }
    )


def synthetic_results(scores: pd.DataFrame, n_bootstrap: int = 200) -> dict:
    labels = scores["label"].to_numpy()
    evaluations = {
        name: evaluate_scores(labels, scores[name].to_numpy(), n_bootstrap=n_bootstrap) for name in scores.columns[2:]
    }
    warnings = [f"dataset warning mentioning {HOSTILE}", blind_warning(evaluations["blind_bow"])]
    skipped = {"gradnorm": "needs capability GRADIENTS", f"evil{HOSTILE}": f"reason {HOSTILE}"}
    return build_results(evaluations, warnings, skipped, kinds={"blind_bow": "baseline"})


def synthetic_manifest() -> dict:
    return {
        "model": {"name": "tiny-gpt", "revision": "abc123"},
        "config": {"attacks": ["loss", "min_k"], "seed": 0, "note": HOSTILE},
        "data_hash": "f" * 64,
        "counts": {"forward_passes": 12, "tokens_computed": 3400, "tokens_cached": 0},
        "fingerprints": {"model": "sha256:1234", "tokenizer": "sha256:5678"},
        "evaluation": {"n_bootstrap": 200, "confidence": 0.95, "nan_policy": "lowest"},
        "score": float("nan"),
    }
