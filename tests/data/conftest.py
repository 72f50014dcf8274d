"""Fixtures for the data tests; writers live in data_helpers (a unique module name)."""

from __future__ import annotations

import pytest
from data_helpers import FORMATS


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    return request.param
