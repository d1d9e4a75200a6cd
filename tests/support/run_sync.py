"""Run `sync_once` in a separate process (for kill tests): python -m tests.support.run_sync DB_URL SHOP_URL."""

from __future__ import annotations

import asyncio
import sys

from orderbridge.connectors.registry import register_connector
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger.db import open_ledger
from orderbridge.runners.embedded import sync_once
from tests.conftest import shop_config
from tests.support import shop


def main() -> None:
    db_url, shop_url, crash = sys.argv[1], sys.argv[2], sys.argv[3] == "crash"
    register_connector(shop.ShopSource)
    register_connector(shop.WmsBackend)
    cfg = shop_config(shop_url, backend={"crash_after_create": crash})
    hub = Hub(db=open_ledger(db_url), runner=cfg.runner, http_timeout=5)
    apply_config(hub, cfg)
    asyncio.run(sync_once(hub))


if __name__ == "__main__":
    main()
