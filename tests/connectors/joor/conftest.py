"""Fixtures: one JOOR sandbox per test module (no demo account), served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from joor_support import Admin

from orderbridge.connectors.joor.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp


@pytest.fixture(scope="module")
def served() -> Iterator[ServedApp]:
    with ServedApp(create_app({"accounts": [], "seed": 7})) as s:
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
