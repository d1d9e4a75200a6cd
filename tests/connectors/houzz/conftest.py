"""Fixtures: one Houzz sandbox per test module (rate limit off), served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from houzz_support import Admin

from orderbridge.connectors.houzz.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with ServedApp(create_app({"rate_limit": False, "accounts": []})) as s:
        yield s


@pytest.fixture
def admin(served: ServedApp) -> Iterator[Admin]:
    a = Admin(served.url)
    a.clear_faults()
    yield a
    a.clear_faults()
    a.http.close()


@pytest.fixture
def url(served: ServedApp) -> str:
    return served.url
