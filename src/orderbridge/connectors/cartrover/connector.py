"""CartRover API connections: the hub's /v1 API is their external system.

- ``cartrover_cart`` (source): an "API Access" cart. It pushes orders to ``POST /v1/cart/orders/...``
  with its key; the API hands each one to the engine's intake like any downloaded order, and the cart
  reads status and tracking back with ``GET /v1/cart/orders/status/{cust_ref}``.
- ``cartrover_wms`` (backend): a warehouse that pulls its work through the merchant or warehouse
  level. Delivering an order queues it for the warehouse; what the warehouse posts back (shipments,
  stock) is read by the usual ``shipments`` and ``stock`` jobs, so the engine stays the one place
  where orders and steps change state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import sqlalchemy as sa

from orderbridge.connectors.base import (
    BackendConnector,
    CancelResult,
    Capabilities,
    CheckResult,
    DeliveryRequest,
    DownloadItem,
    SourceConnector,
    Window,
)
from orderbridge.connectors.cartrover import store
from orderbridge.connectors.cartrover.mapping import pushed_order
from orderbridge.connectors.errors import ConfigError
from orderbridge.domain.models import Cancellation, Shipment, StockLevel, utcnow
from orderbridge.ledger import schema as t

# These connections make no outgoing calls; the URL only satisfies the connection record.
INTERNAL_URL = "http://orderbridge.internal/v1"


def _ledger(connector: Any) -> Any:
    if connector.ctx.ledger is None:
        raise ConfigError(f"{connector.display_name} connections run only inside an orderbridge hub",
                          fix="open the connection through the hub (orderbridge serve / sync)")
    return connector.ctx.ledger


def _active_keys(ledger: Any, connection_id: int) -> int:
    k, g = t.api_keys, t.api_key_grants
    granted = sa.select(g.c.key_id).where(g.c.connection_id == connection_id)
    with ledger.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(k).where(
            k.c.revoked_at.is_(None), sa.or_(k.c.connection_id == connection_id, k.c.id.in_(granted)))).scalar_one())


class CartRoverCartConnector(SourceConnector):
    type_name = "cartrover_cart"
    display_name = "CartRover API cart (API Access)"
    production_url = INTERNAL_URL
    # Orders are pushed to the hub's API: nothing to poll or upload. Cancellations are pushed too
    # (wms_cancel); declaring cancel detection runs the job that carries them on to the backend.
    capabilities = Capabilities(cancel_detection=True)

    def receive(self, raw: Mapping[str, Any]) -> DownloadItem:
        """An order the cart pushed, mapped and filtered as a download would be."""
        return pushed_order(raw, now=utcnow(), earliest=self.settings.earliest_order_date)

    async def cancellations(self, window: Window) -> AsyncIterator[Cancellation]:
        """None to poll: the cart's cancel calls are recorded as they arrive."""
        nothing: list[Cancellation] = []
        for cancellation in nothing:
            yield cancellation

    async def check(self) -> CheckResult:
        keys = _active_keys(_ledger(self), self.ctx.connection_id)
        if not keys:
            return CheckResult(False, f"no API key yet: create one with `orderbridge keys create --level cart "
                                      f"--connection {self.ctx.name}`")
        return CheckResult(True, f"{keys} active API key(s); the cart posts orders to /v1/cart/orders/cartrover")


class CartRoverWmsConnector(BackendConnector):
    type_name = "cartrover_wms"
    display_name = "CartRover API warehouse"
    production_url = INTERNAL_URL
    capabilities = Capabilities(deliver=True, lookup_by_reference=True, idempotency_key=True,
                                shipment_pickup=True, inventory_pickup=True, cancel=True)

    async def check(self) -> CheckResult:
        keys = _active_keys(_ledger(self), self.ctx.connection_id)
        if not keys:
            return CheckResult(False, "no API key yet: create one with `orderbridge keys create --level merchant "
                                      f"--connection {self.ctx.name}` (or --level warehouse)")
        return CheckResult(True, f"{keys} active API key(s); the warehouse pulls /v1/merchant/orders/list/new")

    async def find_order(self, request: DeliveryRequest) -> str | None:
        with _ledger(self).connect() as conn:
            found = store.find(conn, self.ctx.connection_id, request.cust_ref)
        return str(found) if found is not None else None

    async def create_order(self, request: DeliveryRequest, idempotency_key: str) -> str:
        lines = [{"sku": ln.sku, "quantity": ln.quantity} for ln in request.order.lines]
        with _ledger(self).begin() as conn:
            return str(store.enqueue(conn, self.ctx.connection_id, request.cust_ref, lines, request.carrier,
                                     request.service))

    async def shipments(self, window: Window) -> AsyncIterator[Shipment]:
        with _ledger(self).connect() as conn:
            found = store.shipments(conn, self.ctx.connection_id, window.since, window.until)
        for shipment in found:
            yield shipment

    async def stock_levels(self) -> list[StockLevel]:
        with _ledger(self).connect() as conn:
            rows = store.stock(conn, self.ctx.connection_id)
        return [StockLevel(sku=r.sku, warehouse=r.warehouse, on_hand=r.on_hand, available=r.available,
                           committed=max(0, r.on_hand - r.available)) for r in rows]

    async def cancel_order(self, backend_order_id: str, request: DeliveryRequest) -> CancelResult:
        with _ledger(self).begin() as conn:
            if store.cancel(conn, int(backend_order_id)):
                return CancelResult(canceled=True, note="withdrawn from the warehouse's queue")
        return CancelResult(canceled=False, too_late=True,
                            note="the warehouse already acknowledged the order; cancel it in the warehouse system")
