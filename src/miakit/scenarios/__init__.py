"""Ground-truth scenarios: targets whose training members are known because miakit trained them itself.

``load_bundled_passages`` gives the bundled public-domain corpus; ``build_pretrain_scenario`` trains a small
GPT-2 from scratch on chosen passages and ``build_finetune_scenario`` fine-tunes a pretrained LLM on them, so
that the passages left out are certain non-members. Importing this package does not import torch; the training
code loads it when called.
"""

from __future__ import annotations

from miakit.scenarios.corpus import bundled_corpus_path, load_bundled_passages
from miakit.scenarios.layout import load_scenario

__all__ = [
    "build_finetune_scenario",
    "build_pretrain_scenario",
    "bundled_corpus_path",
    "finetune_causal_lm",
    "load_bundled_passages",
    "load_scenario",
    "train_tiny_gpt",
]

_LAZY = {
    "train_tiny_gpt": "miakit.scenarios.pretrain",
    "build_pretrain_scenario": "miakit.scenarios.pretrain",
    "build_finetune_scenario": "miakit.scenarios.finetune",
    "finetune_causal_lm": "miakit.scenarios.finetune",
}


def __getattr__(name: str):  # lazy: importing miakit.scenarios must not import torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
