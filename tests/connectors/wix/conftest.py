"""Wix test fixtures: the sandbox served over real HTTP and an admin client of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from wix_support import FAST_HOOKS, WixAdmin

from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.wix.sandbox import create_app


@pytest.fixture(scope="module")
def wix_url() -> Iterator[str]:
    with ServedApp(create_app(FAST_HOOKS)) as served:
        yield served.url


@pytest.fixture
def fresh_url() -> Iterator[str]:
    """A sandbox of its own, for tests that change faults or limits."""
    with ServedApp(create_app(FAST_HOOKS)) as served:
        yield served.url


@pytest.fixture(scope="module")
def admin(wix_url: str) -> WixAdmin:
    return WixAdmin(wix_url)


@pytest.fixture
def site(admin: WixAdmin) -> dict[str, Any]:
    return admin.site()
