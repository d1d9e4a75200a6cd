"""Write orders into the ledger as fast as possible, printing each id once its transaction
committed (for kill tests): python -m tests.support.heavy_writes DB_URL PREFIX."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from orderbridge.connectors.base import DownloadedOrder
from orderbridge.connectors.registry import register_connector
from orderbridge.domain.models import Address, Order, OrderLine
from orderbridge.engine.hub import Hub
from orderbridge.engine.orders import ingest
from orderbridge.engine.provision import apply_config
from orderbridge.ledger.db import create_engine, open_ledger
from tests.conftest import shop_config
from tests.support import shop


def order(external_id: str) -> DownloadedOrder:
    lines = [OrderLine(sku=f"SKU-{i}", quantity=i + 1, description="x" * 400) for i in range(8)]
    return DownloadedOrder(external_id=external_id, raw={"id": external_id, "pad": "y" * 2000}, order=Order(
        external_id=external_id, cust_po_no=f"PO-{external_id}", order_date=datetime(2026, 5, 1, tzinfo=UTC),
        ship_to=Address(name="Ada", address1="1 Main St", city="Springfield"), lines=lines))


def prepare(db_url: str) -> None:
    """Migrate the ledger and declare the connections the writer's orders belong to."""
    register_connector(shop.ShopSource)
    register_connector(shop.WmsBackend)
    hub = Hub(db=open_ledger(db_url))
    apply_config(hub, shop_config("http://127.0.0.1:9"))
    hub.db.dispose()


def write_forever(db_url: str, prefix: str, out: TextIO) -> None:
    hub = Hub(db=create_engine(db_url))
    with hub.db.connect() as conn:
        source = hub.connection(conn, "shop")
        route = hub.route_for_source(conn, source.id)
    print("ready", file=out, flush=True)
    n = 0
    while True:
        batch = [f"{prefix}-{n + i}" for i in range(5)]
        with hub.db.begin() as conn:
            for external_id in batch:
                ingest(conn, source, route, order(external_id), [])
        n += len(batch)
        print(" ".join(batch), file=out, flush=True)  # only after the commit returned


def main() -> None:
    prepare(sys.argv[1])
    write_forever(sys.argv[1], sys.argv[2], sys.stdout)


if __name__ == "__main__":
    main()
