"""Every block test runs under the session's one Prefect test server (tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _blocks_use_the_prefect_harness(prefect_harness):
    """Starts the shared Prefect test server before the first block test."""
