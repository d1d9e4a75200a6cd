"""Fixtures for the TradeGecko connector tests: a served sandbox, one fresh account per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tg_support import TG

from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.tradegecko.sandbox import create_app


@pytest.fixture(scope="session")
def tg_server() -> Iterator[ServedApp]:
    with ServedApp(create_app({"rate_limit": False})) as served:
        yield served


@pytest.fixture
def tg(tg_server: ServedApp) -> Iterator[TG]:
    account = TG(tg_server.url)
    yield account
    account.admin.delete("/faults")


@pytest.fixture
def stocked(tg: TG) -> TG:
    """An account with two SKUs stocked at its primary location."""
    tg.variants({"sku": "SKU-1", "name": "Walnut chair", "retail_price": "12", "stock": {str(tg.location): 10}},
                {"sku": "SKU-2", "name": "Oak table", "retail_price": "300", "stock": {str(tg.location): 4}})
    return tg
