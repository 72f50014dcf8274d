"""User-facing errors: one clear paragraph, exit code 2 in the CLI, no traceback unless --debug."""

from __future__ import annotations


class MiakitError(Exception):
    """An error the user can fix (bad file, bad label, missing capability, bad option)."""


class DataError(MiakitError):
    """Input data is malformed; the message names the file and, where known, the line."""


class CapabilityError(MiakitError):
    """A backend lacks what an attack needs."""
