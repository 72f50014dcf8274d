"""The Python API takes data as a DataFrame or a list of dicts (checked like a file), and exports ``blind`` and
``infer_dataset`` next to ``audit`` without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import miakit
from lm_helpers import synthetic_texts
from miakit.data import Sample
from miakit.errors import DataError, MiakitError
from miakit.targets.hf_causal import HFCausalLM

TEXTS = synthetic_texts(8, seed=21, max_words=14)


def test_dataframe_and_dicts_score_like_samples(tiny_model, tiny_tokenizer, cache_dir):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="tiny")
    options = {"attacks": ["loss"], "write": False, "bootstrap": 0, "progress": False}
    samples = [Sample(f"row:{i + 1}", t, i % 2) for i, t in enumerate(TEXTS)]
    expected = miakit.audit(target, samples, **options).scores
    frame = pd.DataFrame({"content": TEXTS, "member": ["yes" if i % 2 else "no" for i in range(8)]})
    mapping = {"text_column": "content", "label_column": "member", "label_map": {"yes": 1, "no": 0}}
    from_frame = miakit.audit(target, frame, **options, **mapping).scores
    dicts = [{"text": t, "label": i % 2} for i, t in enumerate(TEXTS)]
    from_dicts = miakit.audit(target, dicts, **options).scores
    for scores in (from_frame, from_dicts):
        assert scores["id"].tolist() == expected["id"].tolist()
        assert scores["label"].tolist() == [i % 2 for i in range(8)]
        np.testing.assert_array_equal(scores["loss"].to_numpy(), expected["loss"].to_numpy())


def test_python_records_are_checked_like_a_file(tiny_model, tiny_tokenizer):
    target = HFCausalLM.from_model(tiny_model, tiny_tokenizer, name="tiny")
    bad = [{"text": t, "label": 1} for t in TEXTS[:3]] + [{"text": "\u200b", "label": 0}]
    with pytest.raises(DataError, match="row 4: has an empty text"):
        miakit.audit(target, bad, write=False)
    with pytest.raises(DataError, match="row 2: has an unknown label 'maybe'"):
        miakit.audit(target, pd.DataFrame({"text": TEXTS[:2], "label": ["1", "maybe"]}), write=False)
    with pytest.raises(DataError, match="no 'body' column"):
        miakit.audit(target, pd.DataFrame({"text": TEXTS[:2]}), text_column="body", write=False)
    with pytest.raises(DataError, match="item 2 is a str"):
        miakit.audit(target, [{"text": "a b"}, "just a string"], write=False)


def test_blind_takes_a_dataframe_and_is_exported(tmp_path):
    frame = pd.DataFrame({"text": TEXTS, "label": [i % 2 for i in range(8)], "id": [f"d{i}" for i in range(8)]})
    result = miakit.blind(frame, out=str(tmp_path / "run"), bootstrap=0)
    assert result.scores["id"].tolist() == [f"d{i}" for i in range(8)]
    assert result.scores["label"].tolist() == frame["label"].tolist()
    assert {"blind_bow", "blind_ngram"} <= set(result.scores.columns)
    with pytest.raises(MiakitError, match="not both"):
        miakit.blind(frame, members="m.txt", nonmembers="n.txt")


def test_the_package_exports_the_three_entry_points_lazily():
    code = (
        "import sys, miakit; assert 'torch' not in sys.modules; "
        "import miakit.api as api; "
        "assert miakit.blind is api.blind and miakit.infer_dataset is api.infer_dataset and miakit.audit is api.audit; "
        "print(sorted(miakit.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "['__version__', 'audit', 'blind', 'infer_dataset']"
    with pytest.raises(AttributeError):
        _ = miakit.no_such_function
