"""Shared fixtures: tiny causal LMs and tokenizers built inside the tests (no downloads, ever)."""

from __future__ import annotations

import os
import random

import pytest

from lm_helpers import make_model, make_tokenizer, synthetic_texts


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tokenizer(synthetic_texts(400, seed=123))


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    return make_model(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, tiny_tokenizer):
    """The random tiny model saved as a Hugging Face directory (safetensors + tokenizer)."""
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An isolated MIAKIT_CACHE for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("MIAKIT_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def trained_scenario(tmp_path_factory):
    """A tiny GPT-2 trained from scratch on 120 bundled passages; 120 others are certain non-members.

    Also a reference model of the same size trained on a disjoint pool (no member, no evaluated non-member).
    """
    from miakit.scenarios import load_bundled_passages, train_tiny_gpt

    passages = [p["text"] for p in load_bundled_passages()]
    rng = random.Random(0)
    pool = rng.sample(passages, 480)
    members, nonmembers, ref_pool = pool[:120], pool[120:240], pool[240:480]
    root = tmp_path_factory.mktemp("scenario")
    target = train_tiny_gpt(members, root / "target", epochs=20, batch_size=8, seed=0)
    reference = train_tiny_gpt(ref_pool, root / "reference", epochs=4, seed=1, tokenizer=target)
    return {"target": target, "reference": reference, "members": members, "nonmembers": nonmembers}


@pytest.fixture(scope="session")
def attack_world(trained_scenario, tmp_path_factory):
    """check_attack's world on the session's trained scenario: 60 + 60 scored samples, 30 + 30 calibration ones,
    the reference model and a tiny masked LM (built once per session)."""
    from miakit.testing import world_from_models

    s = trained_scenario
    return world_from_models(
        s["target"], s["reference"], s["members"], s["nonmembers"], tmp_path_factory.mktemp("attack-world")
    )


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """A real vLLM server (CPU) on 127.0.0.1 serving a tiny GPT-2 trained for the session, with ground truth.

    Yields ``servers.VLLMServer``: ``base_url`` ("http://127.0.0.1:PORT/v1"), ``origin``, ``name``, ``model_dir``,
    ``max_model_len``, ``members``/``nonmembers`` (the passages it was / was not trained on), ``log_path``,
    ``process``. Skips without a vLLM interpreter (``.venv-vllm`` or ``MIAKIT_VLLM_PYTHON``), except under
    ``MIAKIT_REQUIRE_VLLM=1`` (``make test``), where that fails.
    """
    from servers import save_served_model, start_vllm, vllm_python, with_ground_truth

    python = vllm_python()
    if python is None:
        where = os.environ.get("MIAKIT_VLLM_PYTHON") or ".venv-vllm/bin/python"
        reason = f"no vLLM interpreter at {where}"
        if os.environ.get("MIAKIT_REQUIRE_VLLM") == "1":
            pytest.fail(f"MIAKIT_REQUIRE_VLLM=1 but {reason}: run `make install-vllm`", pytrace=False)
        pytest.skip(f"{reason} (run `make install-vllm`)")
    root = tmp_path_factory.mktemp("vllm")
    model = save_served_model(root / "model")
    with start_vllm(
        model.dir, model.name, max_model_len=model.max_model_len, log_path=root / "vllm.log", python=python
    ) as server:
        yield with_ground_truth(server, model)
