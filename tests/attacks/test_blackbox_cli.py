"""``miakit audit`` with the black-box attacks on a tiny trained model: one column each, finite scores."""

from __future__ import annotations

import json

import numpy as np

from cli_helpers import run_cli
from miakit.report import read_run

ATTACKS = {
    "samia[n=2,max_new_tokens=8]",
    "samia_zlib[n=2,max_new_tokens=8]",
    "cdd[n=3,max_new_tokens=8]",
    "verbatim_match[max_new_tokens=8]",
    "verbatim_rouge_l[max_new_tokens=8]",
}


def test_audit_writes_a_finite_column_per_black_box_attack(trained_scenario, tmp_path, cache_dir):
    texts = trained_scenario["members"][:6] + trained_scenario["nonmembers"][:6]
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"s{i}", "text": t, "label": int(i < 6)}) + "\n" for i, t in enumerate(texts))
    )
    out = tmp_path / "run"
    code = run_cli(
        "audit", "--model", trained_scenario["target"], "--data", data, "--attacks", ",".join(sorted(ATTACKS)),
        "--out", out, "--bootstrap", "0",
    )  # fmt: skip
    assert code == 0
    results, scores, manifest = read_run(out)
    assert set(scores.columns) >= ATTACKS and set(results["attacks"]) >= ATTACKS
    assert len(scores) == 12 and np.isfinite(scores[sorted(ATTACKS)].to_numpy(dtype=float)).all()
    assert not results["skipped"]
    # the greedy continuations of verbatim_match, verbatim_rouge_l and cdd are one request per text, generated once
    assert manifest["counts"]["forward_passes_computed"] == 12 * (2 + 3 + 1)
