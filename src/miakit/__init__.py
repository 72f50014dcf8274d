"""miakit: membership inference attacks on large models, with one engine and honest metrics."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "audit", "blind", "infer_dataset"]

_API = ("audit", "blind", "infer_dataset")


def __getattr__(name: str):  # lazy: importing miakit must not import torch
    if name in _API:
        import miakit.api

        return getattr(miakit.api, name)
    raise AttributeError(name)
