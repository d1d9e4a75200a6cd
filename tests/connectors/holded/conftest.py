"""Fixtures: one Holded sandbox per test module (rate limit off), served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from holded_support import Admin

from orderbridge.connectors.holded.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with ServedApp(create_app({"rate_limit_enabled": False, "accounts": []})) as s:
        yield s


@pytest.fixture
def admin(served: ServedApp) -> Iterator[Admin]:
    a = Admin(served.url)
    a.reset()
    yield a
    a.reset()
    a.http.close()


@pytest.fixture
def url(served: ServedApp) -> str:
    return served.url
