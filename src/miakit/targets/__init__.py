"""Backends that turn requests into signals, with their capabilities and fingerprints."""

from miakit.targets.capability import Capability

__all__ = ["Capability"]
