"""JOOR (B2B wholesale marketplace) as an order source: retailer orders in, stock levels out.

JOOR's v2 API has no shipment upload, so orders end at ``shipped`` in orderbridge.

Export acknowledgement. ``GET /v2/orders?sync=1`` marks every order it returns as exported, and
JOOR never returns an exported order to ``sync=1`` again. A download that crashed between that
answer and the ledger's commit would lose the order for good. So each run reads the engine's
window (UTC, with its overlap; the engine moves its cursor only once the run is stored) twice:

1. ``sync=1`` restricted to the window by ``date_start``/``date_end``: the new orders, which JOOR
   now shows as exported (the acknowledgement the brand sees in JOOR);
2. ``sync=0&export_status=3`` over the same window: the orders JOOR already shows exported.

Every order step 1 can mark was last modified inside the window, and a crashed run leaves the
cursor where it was, so the next run's step 2 reads it again; the engine's upsert makes the
repeats harmless. Step 2 also catches a sync=1 page whose answer was lost on the wire.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from orderbridge.connectors.base import (
    Capabilities,
    CheckResult,
    ConnectionContext,
    Credentials,
    DownloadItem,
    InventoryUpdate,
    SourceConnector,
    SourceSettings,
    SurveyItem,
    Window,
)
from orderbridge.connectors.errors import AuthError, ConfigError, ConnectorError, DataError
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.joor import client as wire
from orderbridge.connectors.joor import mapping
from orderbridge.connectors.joor.client import JoorClient
from orderbridge.domain.models import Cancellation

ORDER_TYPES: dict[str, int] = {
    "Approved Orders": wire.ORDER_TYPE_APPROVED,
    "Approved & Shipped Orders": wire.ORDER_TYPE_APPROVED_SHIPPED,
    "Pending Orders": wire.ORDER_TYPE_PENDING,
    "Shipped Orders": wire.ORDER_TYPE_SHIPPED,
    "All Orders except Cancelled": wire.ORDER_TYPE_ALL_BUT_CANCELLED,
    "Notes": wire.ORDER_TYPE_NOTES,
}
OrderStatusSetting = Literal["Approved Orders", "Approved & Shipped Orders", "Pending Orders", "Shipped Orders",
                             "All Orders except Cancelled", "Notes"]
INVENTORY_BATCH = 100
WAREHOUSE_FIX = ("set the connection's warehouse_code to the code shown in JOOR under Account Settings > Order "
                 "Settings > Warehouses, or set inventory_enabled = false")


class JoorCredentials(Credentials):
    api_token: str = Field(min_length=1, title="API Token",
                           description="The JOOR v2 API token your JOOR integration manager issued (the JOOR "
                                       "sandbox has its own token; use that one with Test Mode on).")


class JoorSettings(SourceSettings):
    order_status: OrderStatusSetting = Field(
        default="Approved Orders", title="JOOR Order Status",
        description="Only load orders JOOR lists under this status (its order_type filter). Shipped orders are "
                    "skipped unless you choose 'Shipped Orders'; cancelled orders are never loaded.")
    warehouse_code: str = Field(
        default="", max_length=100, title="Warehouse Code",
        description="Only load orders assigned to this JOOR warehouse (blank: every warehouse). Required for "
                    "inventory sync: stock is loaded into this warehouse. Find it in JOOR under Account Settings "
                    "> Order Settings > Warehouses.")
    skip_empty_customer_code: bool = Field(
        default=True, title="Skip Empty Customer Code",
        description="Skip orders whose retailer has no customer code in JOOR (listed as skipped with the reason).")
    mark_exported: bool = Field(
        default=True, title="Mark Orders Exported",
        description="Let JOOR mark downloaded orders as exported (sync=1), as the JOOR order list shows. Turn off "
                    "when another system exports this account's orders and relies on that flag; orderbridge then "
                    "reads orders by their modification date only.")
    sku_field: Literal["upc", "style_color_size"] = Field(
        default="upc", title="SKU",
        description="What orderbridge uses as the SKU of a JOOR line and for stock updates: 'upc' (JOOR's "
                    "recommended identifier) or 'style_color_size' (style number, color code and size joined by "
                    "the SKU separator, e.g. ST1234-001-M).")
    sku_separator: str = Field(
        default="-", min_length=1, max_length=3,
        description="Separator between style number, color code and size when SKU is 'style_color_size'.")
    dec_pending: bool = Field(
        default=False,
        description="Ask JOOR to deduct its pending-order quantities from the stock sent (dec_pending=1). "
                    "orderbridge already deducts orders it has not delivered yet.")
    first_download_days: int = Field(
        default=30, ge=1, le=3650,
        description="On the first download, read orders changed up to this many days ago (the earliest order "
                    "date, when set, takes precedence).")
    page_size: int = Field(default=wire.DEFAULT_PAGE_SIZE, ge=1, le=500,
                           description="Orders per page (JOOR's count parameter; JOOR pages by 50).")
    production_url: str = Field(default=wire.PRODUCTION_URL,
                                description="JOOR's production API host (used when Test Mode is off).")
    sandbox_url: str = Field(default=wire.SANDBOX_URL,
                             description="JOOR's sandbox API host (used when Test Mode is on).")

    @field_validator("production_url", "sandbox_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) address")
        return value

    @field_validator("warehouse_code")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class JoorConnector(SourceConnector):
    type_name = "joor"
    display_name = "JOOR"
    settings_model = JoorSettings
    credentials_model = JoorCredentials
    production_url = wire.PRODUCTION_URL
    sandbox_name = "joor"
    capabilities: ClassVar[Capabilities] = Capabilities(
        download=True, inventory_push=True, cancel_detection=True, diagnose=True)

    def __init__(self, ctx: ConnectionContext) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.client = JoorClient(ctx.http, ctx.credentials.api_token, page_size=s.page_size)
        self.rules = mapping.Rules(
            order_type=ORDER_TYPES[s.order_status], order_type_label=s.order_status,
            warehouse_code=s.warehouse_code, skip_empty_customer_code=s.skip_empty_customer_code,
            sku_field=s.sku_field, sku_separator=s.sku_separator, earliest=s.earliest_order_date)

    @classmethod
    def default_base_url(cls, settings: Any, test_mode: bool) -> str:
        return str(settings.sandbox_url if test_mode else settings.production_url)

    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        # JOOR publishes no limit for v2: two calls a second keeps a polling hub well-mannered.
        return RateSpec(calls=120, period=60.0)

    @classmethod
    def account_key(cls, credentials: Any, base_url: str) -> str:
        digest = hashlib.sha256(credentials.api_token.encode()).hexdigest()[:12]
        return f"joor:{base_url}:{digest}"

    @classmethod
    def settings_problems(cls, settings: Any) -> list[str]:
        if settings.inventory_enabled and not settings.warehouse_code:
            return ["Inventory sync is on but the Warehouse Code is empty: JOOR needs the warehouse to load stock "
                    "into. Set warehouse_code, or set inventory_enabled = false."]
        return []

    def environment(self) -> str:
        return "the JOOR sandbox" if self.ctx.test_mode else "JOOR production"

    # ---------------------------------------------------------------------------- check
    async def check(self) -> CheckResult:
        # sync=0: a credential check must never mark an order exported.
        params = {"order_type": self.rules.order_type, "export_status": wire.EXPORT_ALL}
        try:
            await self.client.read_orders({**params, "sync": 0, "count": 1, "start_from": 0})
        except AuthError as exc:
            return CheckResult(False, f"{self.environment()} ({self.ctx.base_url}) refused the API token: "
                                      f"{exc.message}. Fix: {exc.fix}")
        except ConnectorError as exc:
            return CheckResult(False, f"{self.environment()} could not be checked: {exc.message}"
                               + (f" ({exc.fix})" if exc.fix else ""))
        if self.settings.inventory_enabled and not self.settings.warehouse_code:
            return CheckResult(False, f"Orders can be read from {self.environment()}, but inventory sync needs the "
                                      f"Warehouse Code: {WAREHOUSE_FIX}")
        return CheckResult(True, f"connected to {self.environment()} ({self.ctx.base_url}): orders can be read")

    # ------------------------------------------------------------------------- download
    def _range(self, window: Window) -> dict[str, str]:
        start = window.since
        if start is None:
            earliest = self.settings.earliest_order_date
            start = datetime.combine(earliest, time(), UTC) if earliest else \
                window.until - timedelta(days=self.settings.first_download_days)
        return {"date_start": wire.wire_time(start), "date_end": wire.wire_time(window.until)}

    async def download(self, window: Window) -> AsyncIterator[DownloadItem]:
        query: dict[str, Any] = {"order_type": self.rules.order_type, **self._range(window)}
        seen: set[str] = set()
        if not self.settings.mark_exported:
            async for raw in self.client.iter_orders({**query, "export_status": wire.EXPORT_ALL}, sync=False):
                yield mapping.classify(raw, self.rules)
            return
        # check=0: JOOR must not withhold an order for missing fields; orderbridge reports them itself.
        async for raw in self.client.iter_orders({**query, "export_status": wire.EXPORT_NOT_YET, "check": 0},
                                                 sync=True):
            seen.add(mapping.order_id_of(raw))
            yield mapping.classify(raw, self.rules)
        async for raw in self.client.iter_orders({**query, "export_status": wire.EXPORT_DONE}, sync=False):
            if mapping.order_id_of(raw) not in seen:
                yield mapping.classify(raw, self.rules)

    async def cancellations(self, window: Window) -> AsyncIterator[Cancellation]:
        query = {"order_type": wire.ORDER_TYPE_CANCELLED, "export_status": wire.EXPORT_ALL, **self._range(window)}
        async for raw in self.client.iter_orders(query, sync=False):
            found = mapping.cancellation(raw)
            if found is not None:
                yield found

    async def survey(self, window: Window, external_id: str | None = None) -> list[SurveyItem]:
        query = {"order_type": wire.ORDER_TYPE_ALL, "export_status": wire.EXPORT_ALL, **self._range(window)}
        wanted = external_id.strip() if external_id else None
        return [mapping.survey_item(raw, self.rules) async for raw in self.client.iter_orders(query, sync=False)
                if wanted is None or mapping.order_id_of(raw) == wanted]

    # ------------------------------------------------------------------------ inventory
    async def push_inventory(self, updates: list[InventoryUpdate]) -> dict[str, str]:
        warehouse = self.settings.warehouse_code
        if not warehouse:
            raise ConfigError("JOOR inventory sync needs the connection's Warehouse Code", fix=WAREHOUSE_FIX)
        wanted = {u.sku: u.quantity for u in updates}  # the last value of a SKU wins
        refused: dict[str, str] = {}
        ready: list[tuple[str, dict[str, Any]]] = []
        for sku, quantity in wanted.items():
            item = mapping.inventory_item(sku, quantity, self.rules, warehouse)
            if isinstance(item, str):
                refused[sku] = item
            else:
                ready.append((sku, item))
        for start in range(0, len(ready), INVENTORY_BATCH):
            batch = ready[start:start + INVENTORY_BATCH]
            skus = [sku for sku, _ in batch]
            try:
                log = await self.client.bulk_inventory([item for _, item in batch],
                                                       dec_pending=self.settings.dec_pending)
            except DataError as exc:
                refused.update({sku: f"JOOR refused the stock update: {exc.message}" for sku in skus})
                continue
            refused.update(mapping.inventory_refusals(skus, log))
        return refused
