"""One Houzz Seller store routed to a QuickBooks Commerce (TradeGecko) account, for the engine tests
that run both sandboxes over real HTTP: the configuration, orders placed at Houzz, statuses read back."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orderbridge.config import AppConfig
from orderbridge.demo.scenario import HOUZZ_ACCOUNT
from orderbridge.engine.hub import Hub
from orderbridge.ledger import schema as t

ACCT = HOUZZ_ACCOUNT["id"]


def statuses(hub: Hub) -> dict[str, str]:
    with hub.db.connect() as conn:
        return dict(conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status)).all())


def order(h: Any, lines: list[tuple[str, int]]) -> str:
    body = {"CustomerName": "Zoë Müller", "ShippingMethod": "Standard",
            "Address": {"Address": "1 Main St", "City": "Austin", "State": "TX", "Zip": "73301", "Country": "US"},
            "OrderItems": [{"Type": "Product", "SKU": s, "Title": s, "Quantity": str(q), "Price": "10.00"}
                           for s, q in lines]}
    return str(h.post(f"/accounts/{ACCT}/orders", json=body).json()[0]["OrderId"])


def houzz_to_tg(houzz_url: str, tg_url: str, oauth: dict[str, Any], *, concurrency: int,
                houzz_rate: dict[str, Any], tg_rate: dict[str, Any]) -> AppConfig:
    """The hub's configuration for the two sandboxes; the rate limits are its own call budgets."""
    return AppConfig.model_validate({
        "runner": {"concurrency": concurrency, "lease_seconds": 30},
        "merchants": [{"name": "m"}],
        "connections": [
            {"name": "houzz", "merchant": "m", "type": "houzz_seller", "test_mode": True, "base_url": houzz_url,
             "rate_limit": houzz_rate,
             "credentials": {"app_id": HOUZZ_ACCOUNT["app_name"], "username": HOUZZ_ACCOUNT["user_name"],
                             "token": HOUZZ_ACCOUNT["token"]}},
            {"name": "tg", "merchant": "m", "type": "quickbooks_commerce", "test_mode": True, "base_url": tg_url,
             "rate_limit": tg_rate,
             "credentials": {"access_token": oauth["access_token"], "refresh_token": oauth["refresh_token"],
                             "client_id": oauth["client_id"], "client_secret": oauth["client_secret"]}},
        ],
        "routes": [{"source": "houzz", "backend": "tg"}],
    })
