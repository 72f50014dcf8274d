"""Packages that export names lazily (PEP 562) must give the same object whatever was imported before.

A submodule named like one of its package's exports replaces that export once anything imports the submodule
(``from miakit.evaluate import blind_warning`` returned the module ``blind_warning.py``, and CI failed on it).
Each check runs in a fresh interpreter that first imports every submodule, the order that exposes the clash.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHECK = textwrap.dedent(
    """
    import importlib, pkgutil, types, sys
    package = importlib.import_module(sys.argv[1])
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    bad = []
    for name in package.__all__:
        value = getattr(package, name)
        if isinstance(value, types.ModuleType):
            bad.append(name)
    print(",".join(bad))
    """
)


@pytest.mark.parametrize("package", ["miakit.evaluate", "miakit.scenarios"])
def test_lazy_export_is_not_shadowed_by_a_submodule(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, package], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"exports of {package} shadowed by a submodule: {result.stdout.strip()}"
