"""Wix (eCommerce / Wix Stores) as an order source: orders in, fulfillments and stock out."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any, Literal

from pydantic import Field

from orderbridge.connectors.base import (
    Capabilities,
    CheckResult,
    ConfirmMode,
    ConnectionContext,
    Credentials,
    DownloadItem,
    InventoryUpdate,
    SourceConnector,
    SourceSettings,
    StoredOrder,
    SurveyItem,
    UploadResult,
    WebhookEvent,
    Window,
)
from orderbridge.connectors.errors import AuthError, ConfigError, DataError, NotFound, TransientError
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.wix import mapping
from orderbridge.connectors.wix.client import WixClient, load_public_key, verify_webhook
from orderbridge.connectors.wix.inventory import PROBE_ID, InventoryPusher
from orderbridge.domain.models import Cancellation, Shipment


class WixCredentials(Credentials):
    api_key: str = Field(min_length=1, description="API key from Wix's API Keys Manager (created by the site "
                         "owner, with the Wix eCommerce and Wix Stores permissions).")
    site_id: str = Field(min_length=1, description="The site ID: the part after /dashboard/ in the address of "
                         "the site's dashboard.")
    webhook_public_key: str = Field(default="", description="Public key of the Wix app that sends webhooks "
                                    "(the app's Webhooks page, 'Public key'), PEM. Leave empty to rely on polling.")


class WixSettings(SourceSettings):
    import_orders: Literal["any_payment_status", "paid_only"] = Field(
        default="any_payment_status",
        description="Which orders to import. 'any_payment_status': every placed order, with its paid flag, so "
        "a backend that needs payment (Holded invoices and sales receipts) waits until Wix marks it Paid while "
        "sales orders go at once. 'paid_only': only orders Wix marks Paid; unpaid ones are listed as skipped "
        "and imported once paid. Cancelled and fully refunded orders are never imported; refunds are never "
        "imported.")
    partially_refunded_is_paid: bool = Field(
        default=True, description="Treat a partially refunded order as paid (it was paid before the refund).")
    tax_id_fields: list[str] = Field(
        default_factory=lambda: list(mapping.Options().tax_id_fields),
        description="Titles of the checkout custom fields that hold the buyer's tax ID (NIF/CIF/VAT); its "
        "value becomes the order's tax ID, used to match or create the customer.")
    missing_sku: Literal["error", "product_id", "skip_line"] = Field(
        default="error",
        description="Lines without a SKU: 'error' puts the order in error until the product gets a SKU; "
        "'product_id' uses the Wix product (and variant) ID as SKU; 'skip_line' leaves the line out.")
    carrier_aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Backend carrier name -> Wix shipping provider (fedex, ups, usps, dhl, canadaPost, or any "
        "name shown to the buyer). Common spellings of those five are recognised without an entry.")
    tracking_links: dict[str, str] = Field(
        default_factory=dict,
        description="Tracking page per carrier Wix does not link itself, {tracking} standing for the number, "
        "e.g. {\"seur\": \"https://example.com/track?n={tracking}\"}.")
    catalog_version: Literal["auto", "v1", "v3"] = Field(
        default="auto", description="Wix Stores catalog version of the site, for stock updates ('auto' asks Wix).")
    inventory_location_id: str = Field(
        default="", description="Catalog V3 only: the Wix inventory location to update (empty: every location "
        "the SKU is stocked at).")
    webhook_instance_id: str = Field(
        default="", description="When one Wix app sends webhooks for several sites to this address: the app "
        "instance ID of this site; other sites' events are ignored.")
    webhook_max_age_hours: float = Field(
        default=72.0, gt=0, le=720, description="Refuse a signed webhook issued longer ago than this (a replayed "
        "delivery); Wix retries a delivery for about 48 hours. Tokens without an issue time are accepted.")


class WixConnector(SourceConnector):
    type_name = "wix"
    display_name = "Wix"
    settings_model = WixSettings
    credentials_model = WixCredentials
    production_url = "https://www.wixapis.com"
    sandbox_name = "wix"
    capabilities = Capabilities(
        download=True, shipment_upload=True, multiple_tracking=True, item_level_shipments=True,
        inventory_push=True, cancel_detection=True, webhooks=True, diagnose=True,
    )

    def __init__(self, ctx: ConnectionContext) -> None:
        super().__init__(ctx)
        self.client = WixClient(ctx.http, ctx.credentials.api_key, ctx.credentials.site_id)
        s = ctx.settings
        self.inventory = InventoryPusher(self.client, s.catalog_version, s.inventory_location_id)
        self.opts = mapping.Options(
            import_orders=s.import_orders, partially_refunded_is_paid=s.partially_refunded_is_paid,
            tax_id_fields=tuple(s.tax_id_fields), missing_sku=s.missing_sku,
            earliest_order_date=s.earliest_order_date, carrier_aliases=dict(s.carrier_aliases),
            tracking_links=dict(s.tracking_links),
        )

    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        return RateSpec(calls=200, period=60.0)  # Wix: 200 requests per minute per site

    @classmethod
    def account_key(cls, credentials: Any, base_url: str) -> str:
        return f"wix:{base_url}:{credentials.site_id}"

    def confirm_mode(self) -> ConfirmMode:
        return ConfirmMode.PER_SHIPMENT

    # ------------------------------------------------------------------------------ check
    async def check(self) -> CheckResult:
        try:
            return await self._check()
        except TransientError as exc:
            return CheckResult(False, f"Wix could not be reached just now ({exc.message}); try again later")

    async def _check(self) -> CheckResult:
        try:
            await self.client.call("POST", "/ecom/v1/orders/search", "read orders",
                                   body={"search": {"cursorPaging": {"limit": 1}}}, idempotent=True)
        except AuthError as exc:
            if exc.code == "PERMISSION_DENIED":
                return CheckResult(False, "The API key cannot read orders: add the Wix eCommerce permissions "
                                          "to the key in Wix's API Keys Manager")
            return CheckResult(False, f"{exc.message}: {exc.fix}")
        missing = []
        probes: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("create fulfillments (shipment upload)", self._probe_fulfillments)]
        if self.settings.inventory_enabled:
            probes.append(("update stock (inventory push)", self.inventory.probe))
        for what, probe in probes:
            try:
                await probe()
            except AuthError:
                missing.append(what)
            except ConfigError as exc:
                return CheckResult(False, f"Orders can be read, but: {exc.message} ({exc.fix})")
        if missing:
            return CheckResult(False, "Orders can be read, but the API key lacks the permission to "
                               + " and to ".join(missing) + ": add it in Wix's API Keys Manager")
        if self.ctx.credentials.webhook_public_key:
            try:
                load_public_key(self.ctx.credentials.webhook_public_key)
            except ConfigError as exc:
                return CheckResult(False, f"The API key works, but: {exc.message} ({exc.fix})")
        return CheckResult(True, "Connected to the Wix site: orders can be read, fulfillments created"
                           + (" and stock updated" if self.settings.inventory_enabled else ""))

    async def _probe_fulfillments(self) -> None:
        # Creating a fulfillment for an order that does not exist: refused for want of permission
        # (403) before the order is looked up (404), so nothing is ever written.
        try:
            await self.client.create_fulfillment(PROBE_ID, {"lineItems": [{"id": PROBE_ID, "quantity": 1}]})
        except (NotFound, DataError):
            return

    # --------------------------------------------------------------------------- download
    def _window_filter(self, window: Window, field: str = "updatedDate") -> dict[str, Any]:
        rng: dict[str, str] = {"$lte": _iso(window.until)}
        if window.since:
            rng["$gte"] = _iso(window.since)
        flt: dict[str, Any] = {field: rng}
        earliest = self.settings.earliest_order_date
        if earliest and field != "createdDate":
            flt["createdDate"] = {"$gte": _iso(datetime.combine(earliest, dtime.min, tzinfo=UTC))}
        return flt

    async def download(self, window: Window) -> AsyncIterator[DownloadItem]:
        sort = [{"fieldName": "updatedDate", "order": "ASC"}]
        async for raw in self.client.search_orders(self._window_filter(window), sort):
            yield mapping.to_download_item(raw, self.opts)

    async def fetch_order(self, external_id: str) -> DownloadItem | None:
        raw = await self.client.get_order(external_id)
        return None if raw is None else mapping.to_download_item(raw, self.opts)

    async def cancellations(self, window: Window) -> AsyncIterator[Cancellation]:
        flt = {**self._window_filter(window), "status": {"$eq": "CANCELED"}}
        flt.pop("createdDate", None)  # a cancellation matters whenever the order was placed
        async for raw in self.client.search_orders(flt, [{"fieldName": "updatedDate", "order": "ASC"}]):
            found = mapping.cancellation(raw)
            if found is not None:
                yield found

    async def survey(self, window: Window, external_id: str | None = None) -> list[SurveyItem]:
        if external_id:
            ref = external_id.strip().lstrip("#")
            if ref.isdigit():  # a merchant knows the order number, not the id
                found = [r async for r in self.client.search_orders({"number": {"$eq": int(ref)}}, [])]
            else:
                raw = await self.client.get_order(ref)
                found = [raw] if raw else []
            return [mapping.survey_item(r, self.opts) for r in found]
        flt = {"createdDate": {"$gte": _iso(window.since), "$lte": _iso(window.until)}} if window.since else \
            {"createdDate": {"$lte": _iso(window.until)}}
        sort = [{"fieldName": "createdDate", "order": "ASC"}]
        return [mapping.survey_item(r, self.opts) async for r in self.client.search_orders(flt, sort)]

    # --------------------------------------------------------------------------- webhooks
    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        pem = self.ctx.credentials.webhook_public_key
        if not pem:
            raise ConfigError("This Wix connection has no webhook public key, so webhooks cannot be verified",
                              fix="paste the public key of the Wix app (its Webhooks page) into the connection")
        max_age = self.settings.webhook_max_age_hours * 3600
        envelope = verify_webhook(body, load_public_key(pem), max_age_seconds=max_age)
        fallback = hashlib.sha256(body).hexdigest()[:32]
        return mapping.webhook_event(envelope, fallback, self.settings.webhook_instance_id)

    # -------------------------------------------------------------------------- shipments
    async def _plan(self, order: StoredOrder, shipment: Shipment) -> mapping.Plan:
        raw = dict(order.raw) if order.raw.get("lineItems") else await self._raw(order)
        existing = await self.client.fulfillments(order.external_id)
        plan = mapping.plan_fulfillments(raw, shipment, existing, self.opts)
        if plan.problems:
            raise DataError("; ".join(plan.problems), code="unknown_sku",
                            fix="add a SKU alias so the backend's SKU maps to the Wix product, or confirm the "
                                "shipment in Wix by hand")
        return plan

    async def _raw(self, order: StoredOrder) -> dict[str, Any]:
        raw = await self.client.get_order(order.external_id)
        if raw is None:
            raise DataError(f"Wix no longer has order {order.cust_po_no}", code="order_gone",
                            fix="confirm the shipment by hand if the order was re-created in Wix")
        return raw

    async def upload_shipments(self, order: StoredOrder, shipments: list[Shipment]) -> UploadResult:
        notes: list[str] = []
        created = present = 0
        for shipment in shipments:
            plan = await self._plan(order, shipment)
            present += plan.present
            notes.extend(plan.notes)
            for planned in plan.to_create:
                try:
                    await self.client.create_fulfillment(order.external_id, planned.fulfillment)
                except DataError as exc:
                    if exc.code != "TRACKING_NUMBER_ALREADY_EXISTS":
                        raise
                    present += 1  # an earlier attempt got through
                    continue
                created += 1
        summary = f"{created} Wix fulfillment(s) created" + (f", {present} already there" if present else "")
        return UploadResult(note="; ".join([summary, *notes]))

    async def is_confirmed(self, order: StoredOrder, shipments: list[Shipment]) -> bool | None:
        try:
            for shipment in shipments:
                if (await self._plan(order, shipment)).to_create:
                    return False
        except DataError:
            return None
        return True

    # -------------------------------------------------------------------------- inventory
    async def push_inventory(self, updates: list[InventoryUpdate]) -> dict[str, str]:
        return await self.inventory.push(updates)


def _iso(dt: datetime | None) -> str:
    value = (dt or datetime.now(UTC)).astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

