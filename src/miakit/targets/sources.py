"""Where a model comes from (a local folder, a ``.gguf`` file or a hub id), checked before anything loads.

A path that is not there, a folder that holds no model, a file that is no model and weights that only pickle
can read are each one sentence saying what is wrong, never a loader's error about repository ids or JSON.
Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from miakit.errors import MiakitError

GGUF_SUFFIX = ".gguf"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MODEL_CONFIGS = ("config.json", "adapter_config.json")
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


@dataclass(frozen=True)
class ModelSource:
    """A model's source: ``kind`` is 'dir' (a Hugging Face folder), 'gguf' (one file) or 'hub' (a hub id)."""

    name: str
    kind: str
    path: Path | None = None

    @property
    def load_from(self) -> str:
        """What transformers' ``from_pretrained`` takes: the folder (a GGUF file's folder) or the hub id."""
        if self.path is None:
            return self.name
        return str(self.path.parent if self.kind == "gguf" else self.path)

    @property
    def gguf_file(self) -> str | None:
        """The GGUF file's name inside ``load_from`` (transformers' ``gguf_file``), else None."""
        return self.path.name if self.kind == "gguf" and self.path is not None else None


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be meant as a path (a hub id is 'name' or 'org/name')."""
    if name.startswith(("/", ".", "~", "\\")) or "\\" in name or Path(name).is_absolute():
        return True
    return name.lower().endswith(GGUF_SUFFIX) or HUB_ID.fullmatch(name) is None


def resolve_source(name: str) -> ModelSource:
    """The source ``name`` stands for; a MiakitError saying what is wrong when it can hold no model."""
    path = Path(name).expanduser()
    if path.is_dir():
        if any((path / config).is_file() for config in MODEL_CONFIGS):
            return ModelSource(name, "dir", path)
        ggufs = sorted(p for p in path.iterdir() if p.suffix.lower() == GGUF_SUFFIX and p.is_file())
        if len(ggufs) == 1:
            return ModelSource(name, "gguf", ggufs[0])
        raise MiakitError(
            f"no model at {name}: the folder has no config.json (a Hugging Face model folder holds config.json, "
            "tokenizer files and weights; for a GGUF model, give the path of its .gguf file)."
        )
    if path.is_file():
        if path.suffix.lower() == GGUF_SUFFIX:
            return ModelSource(name, "gguf", path)
        raise MiakitError(
            f"no model at {name}: it is a file, neither a model folder (config.json, tokenizer files and "
            "weights) nor a .gguf file."
        )
    if path.exists() or looks_like_path(name):
        what = "file" if name.lower().endswith(GGUF_SUFFIX) else "folder"
        raise MiakitError(f"no model at {name}: the {what} does not exist (for a hub id, use the form org/name).")
    return ModelSource(name, "hub")


def pickle_only_weights(directory: Path) -> list[str]:
    """Names of the pickle weight files of a folder that holds no safetensors weights (else empty)."""
    files = [p for p in directory.iterdir() if p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):
        return []
    return sorted(p.name for p in files if p.suffix in PICKLE_SUFFIXES)


def check_weights(directory: Path, *, allow_pickle: bool) -> None:
    """Refuse a folder whose weights only pickle can read, unless the user allowed pickle."""
    pickles = pickle_only_weights(directory)
    if pickles and not allow_pickle:
        raise MiakitError(
            f"{directory} holds only pickle weights ({', '.join(pickles)}); pickle can run code when loaded; "
            "convert to safetensors or pass --allow-pickle if you trust it."
        )


def pickle_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is torch refusing to unpickle a weights file (``weights_only``)."""
    import pickle

    return isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in str(exc)


def refused_pickle_error(name: str, exc: BaseException) -> MiakitError:
    """The sentence for pickle weights that torch's safe loader refused (they hold more than tensors)."""
    lines = [line for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line]
    detail = f" ({lines[0].strip()})" if lines else ""
    return MiakitError(
        f"The pickle weights of '{name}' hold more than tensors and torch refused to load them{detail}: such a "
        "file can run code when loaded and may be malicious. Use safetensors weights from a trusted source."
    )
