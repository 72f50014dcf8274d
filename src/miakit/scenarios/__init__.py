"""Ground-truth scenarios: targets whose training members are known because miakit trained them itself.

``load_bundled_passages`` gives the bundled public-domain corpus; ``train_tiny_gpt`` trains a small GPT-2 from
scratch on chosen passages, so that the passages left out are certain non-members. Importing this package does
not import torch; the training code loads it when called.
"""

from __future__ import annotations

from miakit.scenarios.corpus import bundled_corpus_path, load_bundled_passages

__all__ = ["bundled_corpus_path", "load_bundled_passages", "train_tiny_gpt"]


def __getattr__(name: str):  # lazy: importing miakit.scenarios must not import torch
    if name == "train_tiny_gpt":
        from miakit.scenarios.pretrain import train_tiny_gpt

        return train_tiny_gpt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
