"""Shared fixtures: a ledger on SQLite and on the real PostgreSQL server, and the test shop pair."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from orderbridge.config import AppConfig
from orderbridge.connectors.registry import register_connector
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger.db import open_ledger
from orderbridge.ledger.scratch import scratch_database
from tests.support import shop

PG_ADMIN_URL = os.environ.get("ORDERBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

register_connector(shop.ShopSource)
register_connector(shop.WmsBackend)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ORDERBRIDGE_DATABASE_URL", raising=False)
    monkeypatch.delenv("ORDERBRIDGE_CONFIG", raising=False)


def _pg_database() -> Iterator[str]:
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(scratch_database(PG_ADMIN_URL, "ob_test"))
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL} (set ORDERBRIDGE_TEST_PG): {exc.orig}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI starts PostgreSQL: never let its absence pass quietly
        pytest.skip(message)
    with stack:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        yield from _pg_database()


@pytest.fixture
def shop_server() -> Iterator[ServedApp]:
    with ServedApp(shop.create_app()) as served:
        yield served


class ShopAdmin:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + "/__sandbox__", timeout=10)

    def order(self, oid: str, lines: list[tuple[str, int]] | None = None, **extra: Any) -> None:
        body = {"id": oid, "number": f"PO-{oid}", "created": "2026-11-20T10:00:00+00:00", "name": "Ada Lovelace",
                "street": "1 Main St", "city": "Springfield",
                "lines": [{"sku": s, "qty": q} for s, q in (lines or [("SKU-1", 1)])], **extra}
        self.http.post("/shop/orders", json=body).raise_for_status()

    def cancel(self, oid: str) -> None:
        self.http.post(f"/shop/orders/{oid}/cancel").raise_for_status()

    def ship(self, ref: str, lines: list[tuple[str, int]] | None = None, **extra: Any) -> None:
        body = {"ref": ref, "lines": [{"sku": s, "qty": q} for s, q in (lines or [])], **extra}
        self.http.post("/wms/ship", json=body).raise_for_status()

    def stock(self, levels: dict[str, int]) -> None:
        self.http.post("/wms/stock", json=levels).raise_for_status()

    def faults(self, **plan: Any) -> None:
        self.http.post("/faults", json=plan).raise_for_status()

    def state(self) -> dict[str, Any]:
        return dict(self.http.get("/state").json())


@pytest.fixture
def admin(shop_server: ServedApp) -> ShopAdmin:
    return ShopAdmin(shop_server.url)


def shop_config(url: str, *, source: dict[str, Any] | None = None, backend: dict[str, Any] | None = None,
                route: dict[str, Any] | None = None, aliases: list[dict[str, str]] | None = None) -> AppConfig:
    return AppConfig.model_validate({
        "runner": {"concurrency": 4, "overlap_seconds": 600, "lease_seconds": 30},
        "merchants": [{"name": "acme"}],
        "connections": [
            {"name": "shop", "merchant": "acme", "type": "test_shop", "base_url": url, "test_mode": True,
             "credentials": {"token": shop.TOKEN}, "settings": source or {}},
            {"name": "wms", "merchant": "acme", "type": "test_wms", "base_url": url, "test_mode": True,
             "credentials": {"token": shop.TOKEN}, "settings": backend or {}},
        ],
        "routes": [{"source": "shop", "backend": "wms", "options": route or {}}],
        "sku_aliases": aliases or [],
    })


@pytest.fixture
def make_hub(db_url: str) -> Iterator[Any]:
    hubs: list[Hub] = []

    def make(cfg: AppConfig) -> Hub:
        hub = Hub(db=open_ledger(db_url), runner=cfg.runner, http_timeout=5)
        apply_config(hub, cfg)
        hubs.append(hub)
        return hub

    yield make
    for h in hubs:
        h.db.dispose()
