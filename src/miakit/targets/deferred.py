"""A causal LM named by a directory or hub id whose identity is known before anything loads.

The store keys of its signals need only the identity (weights and tokenizer fingerprints, dtype, context
length, vocabulary size). It is memoised in the cache by what determines it (the weights' hashes, the stats of
the tokenizer and config files, the library versions, the settings), so a rerun whose signals are all stored
imports neither torch nor transformers. Anything else (tokenising, a forward pass) loads the model on first use
as ``HFCausalLM.from_pretrained`` does, and checks that its identity is still the memoised one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

from miakit.errors import MiakitError
from miakit.targets.capability import CAUSAL_LM
from miakit.targets.fingerprint import (
    WEIGHT_SUFFIXES,
    adapter_base,
    is_adapter,
    model_fingerprint,
    read_json_memo,
    write_json_memo,
)

IDENTITIES = "target-identities.json"
IDENTITY_VERSION = 2  # bump when what HFCausalLM derives its identity from changes
IDENTITY_FIELDS = ("fingerprint", "tokenizer_fingerprint", "max_length", "vocab_size", "dtype", "device")
DTYPE_NAMES = ("float32", "bfloat16", "float16")


def _torch_is_cpu_only() -> bool:
    """Whether the installed torch is a build without CUDA or ROCm (read from torch/version.py, not imported)."""
    if sys.platform == "darwin":  # mps
        return False
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return False
    return all(re.search(rf"^{name}\s*(:[^=\n]*)?=\s*None\s*$", text, re.M) for name in ("cuda", "hip"))


def resolve_device_cheaply(device: str) -> str:
    """``resolve_device`` without importing torch when the answer is certain ('auto' on a CPU-only build)."""
    if device != "auto":
        return device
    if _torch_is_cpu_only():
        return "cpu"
    from miakit.targets.hf_causal import resolve_device

    return resolve_device(device)


def resolve_dtype_name(dtype: str, device: str) -> str:
    """The dtype name ``HFCausalLM`` resolves ``dtype`` to on ``device`` (torch imported only on an accelerator)."""
    if dtype in DTYPE_NAMES:
        return dtype
    if dtype == "auto" and not device.startswith("cuda"):
        return "float32"
    from miakit.targets.hf_causal import resolve_dtype

    return str(resolve_dtype(dtype, device)).removeprefix("torch.")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _side_files(directory: Path) -> list[tuple[str, int, int, int, int]]:
    """(name, size, mtime, inode, ctime) of the files beside the weights (tokenizer, configs, remote code):
    a file replaced with its size and mtime restored still changes its inode or inode change time."""
    out = []
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.suffix not in WEIGHT_SUFFIXES:
            st = p.stat()
            out.append((p.name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
    return out


def _weight_folders(source: str, found: Any) -> list[Path]:
    """The local folders whose weights a model named ``source`` loads (an adapter's and its base's)."""
    if found.kind != "dir" or found.path is None:
        return []
    folders = [found.path]
    if is_adapter(source):
        base = Path(adapter_base(found.path))
        folders += [base] if base.is_dir() else []
    return folders


def identity_key(source: str, settings: dict[str, Any]) -> str:
    """What the identity of ``source`` under ``settings`` depends on, hashed (the memo's key)."""
    local = Path(source).expanduser()
    directories = [local] if local.is_dir() else []
    if is_adapter(source):
        base = Path(adapter_base(local))
        directories += [base] if base.is_dir() else []
    parts = [
        IDENTITY_VERSION,
        model_fingerprint(source, settings["revision"]),
        [(str(d.resolve()), _side_files(d)) for d in directories],
        {p: _version(p) for p in ("transformers", "tokenizers", "peft")},
        settings,
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class DeferredCausalLM:
    """Stands for ``HFCausalLM.from_pretrained(source, ...)``: its identity is read from the memo when known,
    the real target is built on the first use of anything else (tokenizer, model, forward passes)."""

    kind = "hf_causal"
    capabilities = CAUSAL_LM
    concurrency = 1  # batches the engine may have in flight at once (one model, one batch at a time)

    def __init__(
        self,
        source: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        max_length: int | None = None,
        allow_pickle: bool = False,
    ) -> None:
        from miakit.targets.sources import check_weights, resolve_source

        found = resolve_source(source)  # a missing path or a folder with no model: one sentence, nothing loads
        for directory in _weight_folders(source, found):
            check_weights(directory, allow_pickle=allow_pickle)
        self.name = source
        self._allow_pickle = allow_pickle
        self.revision = revision
        device = resolve_device_cheaply(device)
        self._settings = {
            "revision": revision,
            "dtype": resolve_dtype_name(dtype, device),
            "device": device,
            "trust_remote_code": trust_remote_code,
            "max_length": max_length,
        }
        self._real: Any = None
        try:
            self._key = identity_key(source, self._settings)
        except MiakitError:
            if found.kind != "hub":
                raise
            self._load()  # the loader's own error says what is wrong with a name that is no directory
            raise
        identity = read_json_memo(IDENTITIES).get(self._key)
        if not isinstance(identity, dict) or set(identity) != set(IDENTITY_FIELDS):
            identity = self._identity_of(self._load())
            write_json_memo(IDENTITIES, self._key, identity)
        self._identity = identity
        for field in IDENTITY_FIELDS:
            setattr(self, field, identity[field])

    @staticmethod
    def _identity_of(target: Any) -> dict[str, Any]:
        return {field: getattr(target, field) for field in IDENTITY_FIELDS}

    def _load(self) -> Any:
        if self._real is None:
            from miakit.targets.hf_causal import HFCausalLM

            settings = self._settings
            real = HFCausalLM.from_pretrained(
                self.name,
                revision=settings["revision"],
                dtype=settings["dtype"],
                device=settings["device"],
                trust_remote_code=settings["trust_remote_code"],
                max_length=settings["max_length"],
                allow_pickle=self._allow_pickle,
            )
            known = getattr(self, "_identity", None)
            if known is not None and self._identity_of(real) != known:
                write_json_memo(IDENTITIES, self._key, self._identity_of(real))
                raise MiakitError(
                    f"Model '{self.name}' changed while it was in use (its tokenizer or weights no longer match "
                    "the identity this run started with). Run again."
                )
            self._real = real
        return self._real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._load(), name)

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory (never before the first computed signal)."""
        return self._real is not None and self._real.loaded

    def release(self) -> None:
        if self._real is not None:
            self._real.release()

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this target (as ``HFCausalLM.describe``)."""
        return {
            "name": self.name,
            "backend": self.kind,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "dtype": self.dtype,
            "device": self.device,
            "max_length": self.max_length,
            "capabilities": sorted(c.value for c in self.capabilities),
        }
