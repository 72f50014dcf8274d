"""Model paths and weight formats through the CLI: a missing folder, a folder or file that holds no model, a GGUF
file loaded directly, pickle-only weights refused unless allowed, and a malicious pickle refused cleanly."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_cli
from lm_helpers import synthetic_texts


@pytest.fixture
def data(tmp_path: Path) -> Path:
    texts = synthetic_texts(8, seed=7, max_words=12)
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    return path


def audit(model: object, data: Path, out: Path, *extra: object) -> int:
    return run_cli(
        "audit", "--model", model, "--data", data, "--attacks", "loss", "--out", out,
        "--bootstrap", "10", "--no-progress", *extra,
    )  # fmt: skip


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "models" / "nope", "no model at {p}: the folder does not exist (for a hub id, use the form"),
        (lambda d: d / "nope.gguf", "no model at {p}: the file does not exist"),
        (lambda d: _empty_folder(d / "empty"), "no model at {p}: the folder has no config.json"),
        (lambda d: _file(d / "weights.txt"), "no model at {p}: it is a file, neither a model folder"),
    ],
    ids=["missing-folder", "missing-gguf", "folder-without-config", "file-that-is-neither"],
)
def test_a_path_that_holds_no_model_is_one_sentence(make, message, data, tmp_path, cache_dir, capsys):
    path = make(tmp_path)
    out = tmp_path / "run"
    assert audit(path, data, out) == 2
    assert message.format(p=path) in one_error(capsys)
    assert not out.exists()


def _empty_folder(path: Path) -> Path:
    path.mkdir()
    (path / "notes.txt").write_text("no model here")
    return path


def _file(path: Path) -> Path:
    path.write_text("not a model")
    return path


def _pickle_only(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model with its weights as a torch pickle (pytorch_model.bin) instead of safetensors."""
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def test_pickle_only_weights_are_refused_unless_allowed(tiny_model_dir, data, tmp_path, cache_dir, capsys):
    folder = _pickle_only(tiny_model_dir, tmp_path)
    assert audit(folder, data, tmp_path / "refused") == 2
    assert (
        f"{folder} holds only pickle weights (pytorch_model.bin); pickle can run code when loaded; convert to "
        "safetensors or pass --allow-pickle if you trust it."
    ) in one_error(capsys)
    assert not (tmp_path / "refused").exists()

    assert audit(folder, data, tmp_path / "allowed", "--allow-pickle") == 0
    assert audit(tiny_model_dir, data, tmp_path / "safetensors") == 0
    allowed, safe = (pd.read_csv(tmp_path / d / "scores.csv") for d in ("allowed", "safetensors"))
    np.testing.assert_allclose(allowed["loss"], safe["loss"], rtol=1e-6)


class _Evil:
    """Unpickling this calls os.system: what a malicious pytorch_model.bin does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_with_allow_pickle_is_a_clear_error(tiny_model_dir, data, tmp_path, cache_dir, capsys):
    import torch

    folder = _pickle_only(tiny_model_dir, tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"transformer.wte.weight": _Evil(marker)}, folder / "pytorch_model.bin", pickle_module=pickle)
    out = tmp_path / "run"
    assert audit(folder, data, out, "--allow-pickle") == 2
    message = one_error(capsys)
    assert "hold more than tensors and torch refused to load them" in message
    assert "may be malicious" in message
    assert not marker.exists()
    assert not (out / "results.json").exists()


@pytest.fixture(scope="module")
def gguf_model(tmp_path_factory, tiny_tokenizer) -> Path:
    # no skip: the Makefile installs gguf (the smollm2 extra), and GGUF loading is a feature users rely on
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf", tiny_tokenizer)


def test_a_gguf_file_is_audited_directly(gguf_model, data, tmp_path, cache_dir):
    """The GGUF file loads through transformers (gguf_file=...), its fingerprint is the file's hash, and the
    loss scores equal the mean log-likelihood computed here from the same file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    assert audit(gguf_model, data, out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    digest = hashlib.sha256(gguf_model.read_bytes()).hexdigest()
    assert manifest["model"]["fingerprint"] == f"sha256:{digest}|float32"

    tokenizer = AutoTokenizer.from_pretrained(gguf_model.parent, gguf_file=gguf_model.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_model.parent, gguf_file=gguf_model.name, dtype=torch.float32)
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines()]
    expected = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
            expected.append(float(logp.gather(-1, ids[0, 1:, None]).mean()))
    scores = pd.read_csv(out / "scores.csv")
    np.testing.assert_allclose(scores["loss"], expected, atol=1e-4)


def write_tiny_gguf(path: Path, tokenizer, *, seed: int = 0, n_layer: int = 2, dim: int = 32, ff: int = 64) -> Path:
    """A tiny random llama with ``tokenizer``'s byte-level BPE, written as a float32 GGUF file."""
    import gguf

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    eos = vocab["<|endoftext|>"]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(ff)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_rope_dimension_count(dim // 2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t == "<|endoftext|>" else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(eos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(False)
    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * 0.2).astype(np.float32))

    tensor("token_embd.weight", len(tokens), dim)
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(dim, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(dim, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{name}.weight", dim, dim)
        tensor(f"blk.{i}.ffn_gate.weight", ff, dim)
        tensor(f"blk.{i}.ffn_up.weight", ff, dim)
        tensor(f"blk.{i}.ffn_down.weight", dim, ff)
    w.add_tensor("output_norm.weight", np.ones(dim, np.float32))
    tensor("output.weight", len(tokens), dim)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
