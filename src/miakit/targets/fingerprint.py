"""Stable identities of models and tokenizers: the first two parts of every store key."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from miakit.errors import MiakitError

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


def read_json_memo(name: str) -> dict[str, Any]:
    """A memo file of the cache (``file-hashes.json``, ...); empty when missing or unreadable."""
    try:
        memo = json.loads((cache_root() / name).read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def write_json_memo(name: str, key: str, value: Any) -> None:
    """Add ``key`` to a memo file (written whole, atomically); a read-only cache only costs recomputing."""
    memo = read_json_memo(name)
    memo[key] = value
    memo_file = cache_root() / name
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_file)
    except OSError:
        pass


FILE_HASHES = "file-hashes.json"


def stat_key(path: Path) -> str:
    """What identifies a file's content without reading it: path, size, mtime, and what a user cannot restore.

    Size and mtime alone are trusted wrongly when weights are replaced by others of the same size with the
    mtime set back (``touch -r``, a copy tool that keeps times); the inode and the inode change time (which no
    user call can set) change with every such replacement or in-place write.
    """
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"


def file_sha256_memo(path: Path) -> str:
    """sha256 of a file, memoised by its ``stat_key`` so large weights are hashed once per change."""
    memo_key = stat_key(path)
    digest = read_json_memo(FILE_HASHES).get(memo_key)
    if digest is None:
        digest = _file_sha256(path)
        write_json_memo(FILE_HASHES, memo_key, digest)
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
COMMIT = re.compile(r"[0-9a-f]{40}")


def hub_fingerprint(name: str, revision: str | None) -> str:
    """'hub:NAME@COMMIT': the commit of the hub revision whose files sit in the local Hugging Face cache.

    Only the cache is read (no network). A name that cannot be pinned to a commit is a MiakitError, never an
    unpinned 'NAME@main': a branch moves, and stored signals keyed by it would be served for other weights.
    """
    if revision is not None and COMMIT.fullmatch(revision):
        return f"hub:{name}@{revision}"  # a commit names immutable files
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(name, "config.json", revision=revision)
    except ValueError as exc:  # not a valid repository id (huggingface_hub's HFValidationError)
        raise MiakitError(f"'{name}' is neither a local directory nor a valid Hugging Face Hub id: {exc}") from exc
    match = HUB_SNAPSHOT.search(str(path)) if isinstance(path, str) else None
    if match is None:
        raise MiakitError(
            f"Cannot pin model '{name}' (revision {revision or 'main'}) to a hub commit: its config.json is not in "
            "the local Hugging Face cache (HF_HOME / HF_HUB_CACHE), so stored signals could not be told apart "
            "from those of another revision (and no local folder of that name exists). Load it once while online, "
            "pass --revision with a full 40-character commit hash, or give a local directory holding the model."
        )
    return f"hub:{name}@{match.group(1)}"


ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(adapter_dir: Path) -> str:
    """The base model of a PEFT adapter directory (a path relative to the adapter is resolved against it)."""
    try:
        info = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MiakitError(f"Unreadable adapter config {adapter_dir / ADAPTER_CONFIG}: {exc}") from exc
    base = info.get("base_model_name_or_path")
    if not base:
        raise MiakitError(f"{adapter_dir / ADAPTER_CONFIG} names no base_model_name_or_path.")
    candidate = Path(base).expanduser()
    if not candidate.is_absolute() and (adapter_dir / candidate).is_dir():
        candidate = adapter_dir / candidate
    return str(candidate.resolve()) if candidate.is_dir() else base


def is_adapter(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is a local directory holding a PEFT adapter."""
    local = Path(name_or_path).expanduser()
    return local.is_dir() and (local / ADAPTER_CONFIG).is_file()


def model_fingerprint(name_or_path: str, revision: str | None) -> str:
    """Identity of a model's weights: its source's fingerprint; an adapter's covers its base model too."""
    fingerprint = source_fingerprint(name_or_path, revision)
    if is_adapter(name_or_path):
        base = adapter_base(Path(name_or_path).expanduser())
        fingerprint = f"adapter:{fingerprint}+base:{source_fingerprint(base, None)}"
    return fingerprint


def source_fingerprint(name_or_path: str, revision: str | None) -> str:
    """Identity of a model source: a hash of a local directory's weights and configs, of a GGUF file (which
    holds the weights, config and tokenizer), else its hub commit."""
    from miakit.targets.sources import resolve_source

    source = resolve_source(name_or_path)
    if source.kind == "gguf" and source.path is not None:
        return "sha256:" + file_sha256_memo(source.path)
    if source.kind == "dir" and source.path is not None:
        return directory_fingerprint(source.path)
    return hub_fingerprint(name_or_path, revision)
