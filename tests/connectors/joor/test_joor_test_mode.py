"""Test Mode picks JOOR's host: two sandbox instances stand in for production and the JOOR sandbox,
and each one's call log shows which of them the hub talked to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from joor_support import Admin, opened, window
from tests.support.engine import sync
from tests.support.sandbox_fixtures import collect

from orderbridge.config import AppConfig
from orderbridge.connectors.errors import AuthError
from orderbridge.connectors.joor.client import PRODUCTION_URL, SANDBOX_URL
from orderbridge.connectors.joor.connector import JoorConnector, JoorSettings
from orderbridge.connectors.joor.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t

TOKEN = "joor-shared-token"


@pytest.fixture
def hosts() -> Iterator[tuple[Admin, Admin]]:
    spec = [{"id": "brand", "token": TOKEN, "warehouses": ["MAIN"]}]
    with ServedApp(create_app({"accounts": spec, "first_order_id": 100})) as prod, \
            ServedApp(create_app({"accounts": spec, "first_order_id": 900})) as sbx:
        yield Admin(prod.url), Admin(sbx.url)


def config(prod: str, sbx: str, test_mode: bool) -> AppConfig:
    return AppConfig.model_validate({
        "merchants": [{"name": "m"}],
        "connections": [{
            "name": "joor", "merchant": "m", "type": "joor", "test_mode": test_mode,
            "credentials": {"api_token": TOKEN},
            "settings": {"production_url": prod, "sandbox_url": sbx, "warehouse_code": "MAIN"},
        }],
    })


def orders_of(hub: Any) -> list[str]:
    with hub.db.connect() as conn:
        return sorted(conn.execute(sa.select(t.orders.c.external_id)).scalars())


def test_switching_test_mode_moves_every_call_to_the_other_host(make_hub: Any, hosts: tuple[Admin, Admin]) -> None:
    prod, sbx = hosts
    sbx_orders = sbx.generate("brand", 2)
    prod_orders = prod.generate("brand", 3)
    hub = make_hub(config(prod.url, sbx.url, test_mode=True))
    sync(hub, "joor")
    assert orders_of(hub) == sorted(sbx_orders)
    assert sbx.calls() and not prod.calls()
    assert all(s["export_state"] == "success" for s in sbx.states("brand").values())
    assert all(s["export_state"] == "none" for s in prod.states("brand").values())

    apply_config(hub, config(prod.url, sbx.url, test_mode=False))
    seen = sbx.last_seq()
    sync(hub, "joor")
    assert orders_of(hub) == sorted(sbx_orders + prod_orders)
    assert prod.calls() and not sbx.calls(seen)
    assert all(s["export_state"] == "success" for s in prod.states("brand").values())


def test_hosts_default_to_joor_and_base_url_overrides_both(hosts: tuple[Admin, Admin]) -> None:
    prod, sbx = hosts
    settings = JoorSettings()
    assert JoorConnector.default_base_url(settings, test_mode=False) == PRODUCTION_URL
    assert JoorConnector.default_base_url(settings, test_mode=True) == SANDBOX_URL
    sbx.generate("brand", 1)

    async def go() -> list[Any]:
        async with opened(prod.url, TOKEN, {"production_url": "http://127.0.0.1:9", "sandbox_url":
                                            "http://127.0.0.1:9"}, test_mode=True, base_url=sbx.url) as c:
            return await collect(c.download(window()))

    assert len(asyncio.run(go())) == 1 and sbx.calls() and not prod.calls()


def test_a_sandbox_token_used_against_production_says_so(hosts: tuple[Admin, Admin]) -> None:
    prod, _ = hosts

    async def go() -> Any:
        async with opened("", "a-sandbox-only-token", {"production_url": prod.url}, test_mode=False,
                          base_url="") as c:
            with pytest.raises(AuthError) as caught:
                await collect(c.download(window()))
            return caught.value, await c.check()

    err, check = asyncio.run(go())
    assert "Test Mode" in err.fix
    assert not check.ok and "JOOR production" in check.message
