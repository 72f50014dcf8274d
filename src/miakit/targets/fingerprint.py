"""Stable identities of models and tokenizers: the first two parts of every store key."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
WEIGHT_SIDE_FILES = ("config.json", "adapter_config.json", "generation_config.json")


def cache_root() -> Path:
    """Where miakit keeps its store and memos: ``MIAKIT_CACHE`` or ``~/.cache/miakit``."""
    return Path(os.environ.get("MIAKIT_CACHE") or Path.home() / ".cache" / "miakit")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _memo_path() -> Path:
    return cache_root() / "file-hashes.json"


def file_sha256_memo(path: Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime) so large weights are hashed once per change."""
    st = path.stat()
    memo_key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = _memo_path()
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo_key in memo:
        return memo[memo_key]
    digest = _file_sha256(path)
    memo[memo_key] = digest
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_file)
    except OSError:
        pass  # a read-only cache only costs re-hashing
    return digest


def directory_fingerprint(directory: Path) -> str:
    """Hash of the weight files and configs in a local model directory."""
    files = sorted(
        p for p in directory.iterdir() if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in WEIGHT_SIDE_FILES)
    )
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        h.update(file_sha256_memo(p).encode())
    return "sha256:" + h.hexdigest()


def state_dict_fingerprint(model: Any) -> str:
    """Hash of an in-memory model's parameters and buffers (for models built in Python)."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + h.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of the tokenizer's full definition (vocabulary, merges, normaliser, special tokens)."""
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    h.update(str(getattr(tokenizer, "add_bos_token", None)).encode())
    return "sha256:" + h.hexdigest()


HUB_SNAPSHOT = re.compile(r"snapshots[/\\]([0-9a-f]{40})[/\\]")


def hub_fingerprint(name: str, revision: str | None) -> str | None:
    """'hub:NAME@COMMIT' from the local Hugging Face cache, when the files came from the hub."""
    try:
        from transformers.utils import cached_file

        path = cached_file(name, "config.json", revision=revision)
    except Exception:
        return None
    match = HUB_SNAPSHOT.search(str(path)) if path else None
    return f"hub:{name}@{match.group(1)}" if match else None


def source_fingerprint(name_or_path: str, revision: str | None) -> str:
    """Identity of a model source: a hash of a local directory's weights and configs, else its hub revision."""
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return directory_fingerprint(local)
    return hub_fingerprint(name_or_path, revision) or f"hub:{name_or_path}@{revision or 'main'}"
