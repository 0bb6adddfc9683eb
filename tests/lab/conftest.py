from __future__ import annotations

import pytest

from lab.sim import Lab, build_history
from tests.lab.helpers import END

_cache: dict[tuple, Lab] = {}


@pytest.fixture(scope="session")
def history():
    """Scenarios are expensive-ish (a second each): build each one once per session."""

    def make(*faults: str, duration_s: float = 2400, seed: int = 7) -> Lab:
        key = (faults, duration_s, seed)
        if key not in _cache:
            _cache[key] = build_history(seed, duration_s, list(faults), end=END)
        return _cache[key]

    return make


@pytest.fixture(scope="session")
def served():
    """One read-only lab over HTTP for the API format tests (mutating tests make their own)."""
    from lab.testing import running_lab

    with running_lab(seed=7, duration_s=1200, faults=["bad_deploy:payments@-10m"]) as lab:
        yield lab
