"""Run one JOOR order download in its own process (for the kill test):
python joor_run_download.py DB_URL JOOR_URL TOKEN."""

from __future__ import annotations

import asyncio
import sys

from orderbridge.config import AppConfig
from orderbridge.engine.hub import Hub
from orderbridge.engine.jobs import run_job
from orderbridge.engine.provision import apply_config
from orderbridge.ledger.db import open_ledger


def config(url: str, token: str) -> AppConfig:
    return AppConfig.model_validate({
        "runner": {"lease_seconds": 5},
        "merchants": [{"name": "m"}],
        "connections": [{"name": "joor", "merchant": "m", "type": "joor", "test_mode": True,
                         "rate_limit": {"calls": 100, "period": 1}, "credentials": {"api_token": token},
                         "settings": {"sandbox_url": url, "warehouse_code": "MAIN", "page_size": 10}}],
    })


async def download(hub: Hub) -> None:
    with hub.db.connect() as conn:
        row = hub.connection(conn, "joor")
    try:
        await run_job(hub, row, "download")
    finally:
        await hub.aclose()


def main() -> None:
    db_url, url, token = sys.argv[1:4]
    cfg = config(url, token)
    hub = Hub(db=open_ledger(db_url), runner=cfg.runner, http_timeout=30)
    apply_config(hub, cfg)
    asyncio.run(download(hub))


if __name__ == "__main__":
    main()
