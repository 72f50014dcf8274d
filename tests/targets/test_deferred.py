"""The deferred causal LM: the identity a run keys its stored signals by, without loading anything when the
cache's memo knows it, equal to what ``HFCausalLM.from_pretrained`` gives, and recomputed when files change."""

from __future__ import annotations

import json
import shutil

import pytest

from miakit.targets.deferred import (
    IDENTITY_FIELDS,
    DeferredCausalLM,
    resolve_device_cheaply,
    resolve_dtype_name,
)
from miakit.targets.hf_causal import HFCausalLM, resolve_device, resolve_dtype


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path):
    """A private copy of the tiny model directory (tests here edit its files)."""
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def _identity(target) -> dict:
    return {field: getattr(target, field) for field in IDENTITY_FIELDS}


def test_identity_and_description_equal_the_loaded_target(model_dir, cache_dir):
    real = HFCausalLM.from_pretrained(str(model_dir), dtype="float32", device="cpu", max_length=40)
    first = DeferredCausalLM(str(model_dir), dtype="float32", device="cpu", max_length=40)
    assert _identity(first) == _identity(real)
    assert first.describe() == real.describe()
    assert first.capabilities == real.capabilities and first.kind == real.kind


def test_memoised_identity_loads_nothing_until_a_signal_is_computed(model_dir, cache_dir):
    DeferredCausalLM(str(model_dir), dtype="float32", device="cpu")  # fills the memo
    again = DeferredCausalLM(str(model_dir), dtype="float32", device="cpu")
    assert again._real is None and not again.loaded  # identity from the memo: no tokenizer, no weights
    again.release()  # releasing what was never loaded loads nothing
    assert again._real is None
    real = HFCausalLM.from_pretrained(str(model_dir), dtype="float32", device="cpu")
    text = "The king rode to the river."
    assert again.encode(text) == real.encode(text)  # first use of the tokenizer builds the real target
    assert again._real is not None and not again.loaded  # the weights still wait for a forward pass
    assert again.token_stats([(again.encode(text), 1)])[0]["logprob"].tolist() == pytest.approx(
        real.token_stats([(real.encode(text), 1)])[0]["logprob"].tolist(), abs=1e-6
    )
    assert again.loaded


def test_settings_are_part_of_the_identity(model_dir, cache_dir):
    short = DeferredCausalLM(str(model_dir), dtype="float32", device="cpu", max_length=16)
    full = DeferredCausalLM(str(model_dir), dtype="float32", device="cpu")
    half = DeferredCausalLM(str(model_dir), dtype="bfloat16", device="cpu")
    assert short.max_length == 16 and full.max_length == 64  # the tiny GPT-2's n_positions
    assert half.fingerprint.endswith("|bfloat16") and full.fingerprint.endswith("|float32")
    assert len({short.fingerprint, full.fingerprint, half.fingerprint}) == 2  # max_length is not in the weights'


def test_an_edited_config_or_tokenizer_is_never_served_from_the_memo(model_dir, cache_dir):
    before = DeferredCausalLM(str(model_dir), dtype="float32", device="cpu")
    config = json.loads((model_dir / "config.json").read_text())
    config["n_positions"] = 48
    (model_dir / "config.json").write_text(json.dumps(config))
    after = DeferredCausalLM(str(model_dir), dtype="float32", device="cpu")
    assert after.max_length == 48 and after.fingerprint != before.fingerprint

    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    tokenizer["added_tokens"].append(
        {
            "id": max(t["id"] for t in tokenizer["added_tokens"]) + 1000,
            "content": "<|new|>",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    )
    (model_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    edited = DeferredCausalLM(str(model_dir), dtype="float32", device="cpu")
    real = HFCausalLM.from_pretrained(str(model_dir), dtype="float32", device="cpu")
    assert edited.tokenizer_fingerprint == real.tokenizer_fingerprint != after.tokenizer_fingerprint


def test_cheap_device_and_dtype_resolution_agree_with_torch():
    for device in ("auto", "cpu"):
        resolved = resolve_device_cheaply(device)
        assert resolved == resolve_device(device)
        for dtype in ("auto", "float32", "bfloat16", "float16"):
            assert resolve_dtype_name(dtype, resolved) == str(resolve_dtype(dtype, resolved)).removeprefix("torch.")


def test_a_missing_model_says_the_folder_does_not_exist(tmp_path, cache_dir):
    from miakit.errors import MiakitError

    with pytest.raises(MiakitError, match=r"no model at .*no-model: the folder does not exist \(for a hub id"):
        DeferredCausalLM(str(tmp_path / "no-model"))
