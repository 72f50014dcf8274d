"""Run the ``miakit`` command line in-process as a user's shell would, returning its exit status."""

from __future__ import annotations

from miakit.cli import main


def run_cli(*args: object) -> int:
    """``miakit ARGS...``: the exit status (0 when it returns, the SystemExit code otherwise)."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
