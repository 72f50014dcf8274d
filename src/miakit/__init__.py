"""miakit: membership inference attacks on large models, with one engine and honest metrics."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "audit"]


def __getattr__(name: str):  # lazy: importing miakit must not import torch
    if name == "audit":
        from miakit.api import audit

        return audit
    raise AttributeError(name)
