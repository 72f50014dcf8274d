"""Fixtures: a synthetic finished run, as parts and written to a run directory."""

from __future__ import annotations

import pytest
from report_helpers import synthetic_manifest, synthetic_results, synthetic_scores

from miakit.report import write_run_files


@pytest.fixture
def run_parts():
    scores = synthetic_scores()
    return synthetic_results(scores), scores, synthetic_manifest()


@pytest.fixture
def run_dir(tmp_path, run_parts):
    results, scores, manifest = run_parts
    path = tmp_path / "run"
    write_run_files(path, results, scores, manifest)
    return path
