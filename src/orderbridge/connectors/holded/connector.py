"""The Holded backend: orders become sales receipts, invoices or sales orders in Holded.

Holded v1 has no idempotency key, so exactly-once rests on ``find_order``: every document carries
our reference in a custom field and in its notes, and is looked up by it within a few days of the
order date. Contacts are matched the way Holded's own shop integrations do (external id, then
email, then tax id) or one generic contact is used; lines link to products by SKU.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field

from orderbridge.connectors.base import (
    BackendConnector,
    BackendSettings,
    CancelResult,
    Capabilities,
    CheckResult,
    ConnectionContext,
    Credentials,
    DeliveryRequest,
    Settings,
    Window,
)
from orderbridge.connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    DataError,
    NotFound,
    TransientError,
)
from orderbridge.connectors.holded import mapping
from orderbridge.connectors.holded.client import HoldedClient
from orderbridge.connectors.http import RateSpec
from orderbridge.domain.models import Shipment, StockLevel

log = logging.getLogger("orderbridge.connectors.holded")

DocumentType = Literal["salesreceipt", "invoice", "salesorder"]
SERIES_TYPE = {"salesreceipt": "salesreceipt", "invoice": "invoice", "salesorder": "salesorder"}
LABEL = {"salesreceipt": "sales receipt", "invoice": "invoice", "salesorder": "sales order"}
DAY = 86_400
LOOKUP_DAYS = 2  # Holded may store a document date as local midnight: look a little around it


class HoldedCredentials(Credentials):
    api_key: str = Field(min_length=8, description="Holded API key (Settings > Developers > API keys).")


class HoldedOptions(Settings):
    """How an order becomes a Holded document. Set on the connection (defaults) or per route."""

    document_type: DocumentType = Field(
        default="salesreceipt",
        description="Import orders as sales receipts, invoices (both only once paid at the source; "
                    "stock moves at once) or sales orders (always; stock moves on 'Send units').")
    approve: bool = Field(
        default=True,
        description="Approve documents so they get their number and show in Holded's lists; off = drafts.")
    warehouse_id: str = Field(default="", description="Holded warehouse the stock leaves from (empty: default).")
    sales_channel_id: str = Field(default="", description="Holded sales channel for the documents (analytics).")
    design_id: str = Field(default="", description="Holded document template (design) id, copied from Holded.")
    numbering_series_id: str = Field(default="", description="Holded numbering series (empty: the default one).")
    contact_policy: Literal["custom_id", "email", "tax_id", "generic"] = Field(
        default="custom_id",
        description="Match or create the customer's contact by the shop's customer id (then email, then tax "
                    "id), by email (then tax id), by tax id, or put every order on one generic contact.")
    custom_id_prefix: str | None = Field(
        default=None,
        description="Prefix of the customer id stored in Holded (empty: none; unset: '<source connection>:' "
                    "so that several shops never share a contact by accident).")
    generic_contact_name: str = Field(default="Online customer", min_length=1,
                                      description="Name of the generic contact (created when missing).")
    generic_contact_id: str = Field(default="", description="Use this existing Holded contact as the generic one.")
    missing_sku: Literal["error", "free_line"] = Field(
        default="error",
        description="A line whose SKU has no Holded product: hold the order in error, or import it as a "
                    "free line (no stock moves for it) with a warning.")
    mark_paid: bool = Field(default=True, description="Register the payment on invoices and receipts.")
    treasury_id: str = Field(default="", description="Holded bank (treasury) account the payments go to.")
    prices_include_tax: bool = Field(default=False, description="The source's unit prices include tax.")
    shipping_line: bool = Field(default=True, description="Add the shipping charge as a document line.")
    shipping_line_name: str = Field(default="Shipping", min_length=1, description="Name of that line.")
    language: str = Field(default="", description="Document language (es, en, fr, de, it, ca, eu).")
    tags: list[str] = Field(default_factory=list, description="Tags put on every document.")


class HoldedSettings(BackendSettings, HoldedOptions):
    reference_field: str = Field(
        default="orderbridge_ref", min_length=1, pattern=r"^[A-Za-z0-9_\-]+$",
        description="Custom field holding our order reference on every document (used to find it again).")
    stock_warehouses: list[str] = Field(
        default_factory=list, description="Warehouses whose stock is reported (empty: all of them).")
    shipment_detail: mapping.ShipmentDetail = Field(
        default="line",
        description="Report a shipment per order line once all its units are sent ('line'), per sent unit "
                    "('unit', exact for partial lines), or once per order when all is sent ('order').")
    shipment_lookback_days: int = Field(
        default=30, ge=1, le=365, description="Sales orders dated within this many days are checked for sent units.")
    wait_for_tracking: bool = Field(
        default=False, description="Report sent units only once the sales order carries a tracking number.")
    cache_seconds: int = Field(
        default=300, ge=0, le=86_400,
        description="How long the product and contact lists read from Holded are reused.")


class HoldedRouteOptions(HoldedOptions):
    """Per-route options; a field left unset takes the connection's value."""


class HoldedConnector(BackendConnector):
    type_name = "holded"
    display_name = "Holded"
    settings_model = HoldedSettings
    credentials_model = HoldedCredentials
    route_options_model = HoldedRouteOptions
    capabilities = Capabilities(deliver=True, lookup_by_reference=True, shipment_pickup=True,
                                inventory_pickup=True, cancel=True)
    production_url = "https://api.holded.com/api/invoicing/v1"
    sandbox_name = "holded"
    PAYING: ClassVar[frozenset[str]] = mapping.PAYING_TYPES

    def __init__(self, ctx: ConnectionContext) -> None:
        super().__init__(ctx)
        self.client = HoldedClient(ctx.http, ctx.credentials.api_key, ctx.base_url)
        self._skus: set[str] = set()
        self._skus_at = -1e18
        self._contacts: dict[str, dict[str, str]] | None = None  # kind -> value -> contact id
        self._contacts_at = -1e18
        self._generic: dict[str, str] = {}
        self._contact_lock = asyncio.Lock()
        self._product_lock = asyncio.Lock()
        self._fully_sent: set[str] = set()
        self.delivery_notes: dict[str, list[str]] = {}

    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        # Holded publishes no v1 limit; 100 calls a minute per key is its v2 figure (see the notes).
        return RateSpec(calls=100, period=60.0)

    @classmethod
    def account_key(cls, credentials: Any, base_url: str) -> str:
        digest = hashlib.sha256(credentials.api_key.encode()).hexdigest()[:16]
        return f"holded:{base_url}:{digest}"

    @classmethod
    def settings_problems(cls, settings: Any) -> list[str]:
        problems = []
        if settings.document_type in cls.PAYING and settings.mark_paid and not settings.approve:
            problems.append("paying a draft approves it in Holded: with mark_paid on, receipts and invoices "
                            "will not stay drafts")
        if settings.contact_policy == "generic" and settings.generic_contact_id and settings.generic_contact_name:
            problems.append("generic_contact_id is set: generic_contact_name is not used")
        return problems

    # ------------------------------------------------------------------------- options
    def options(self, request: DeliveryRequest | None = None) -> HoldedOptions:
        """The connection's options overlaid with the route's explicitly set ones."""
        s = self.settings
        base = HoldedOptions.model_validate(s.model_dump(include=set(HoldedOptions.model_fields)))
        route = request.options if request is not None else None
        if isinstance(route, HoldedOptions):
            return base.model_copy(update={k: getattr(route, k) for k in route.model_fields_set})
        return base

    def requires_payment(self, request: DeliveryRequest) -> bool:
        return self.options(request).document_type in self.PAYING

    def take_delivery_note(self, cust_ref: str) -> str:
        """Warnings of the last delivery of this order (free lines, totals), for the timeline."""
        return "; ".join(self.delivery_notes.pop(cust_ref, []))

    # ------------------------------------------------------------------------ delivery
    async def find_order(self, request: DeliveryRequest) -> str | None:
        opts = self.options(request)
        doc = await self._find_document(opts.document_type, request)
        if doc is None:
            return None
        await self._settle(opts, doc, request)  # a payment interrupted by a crash is completed here
        return doc.id

    async def _find_document(self, doc_type: str, request: DeliveryRequest) -> mapping.Document | None:
        stamp = int(request.order.order_date.timestamp())
        start, end = stamp - LOOKUP_DAYS * DAY, stamp + LOOKUP_DAYS * DAY
        for drafts in (False, True):
            async for raw in self.client.documents(doc_type, start, end, drafts=drafts):
                doc = mapping.parse(mapping.Document, raw)
                if isinstance(doc, mapping.Problem):
                    log.warning("skipping an unreadable %s: %s", doc_type, doc.message)
                    continue
                if mapping.reference_of(doc, self.settings.reference_field) == request.cust_ref:
                    return doc
        return None

    async def create_order(self, request: DeliveryRequest, idempotency_key: str) -> str:
        # Holded ignores idempotency keys: the engine's find_order before a retry keeps this exactly-once.
        opts = self.options(request)
        order = request.order
        known = await self._known_skus({line.sku for line in order.lines})
        missing = sorted({line.sku for line in order.lines} - known)
        if missing and opts.missing_sku == "error":
            names = ", ".join(missing)
            raise DataError(
                f"SKU {names} has no product in Holded",
                fix=f"create a product with SKU {names} in Holded (Inventory > Products) or add a SKU alias; "
                    "or set missing_sku to free_line for this route",
                code="unknown_sku")
        contact_id = await self._contact(request, opts)
        plan = mapping.plan_document(order, cust_ref=request.cust_ref, cust_po_no=request.cust_po_no,
                                     contact_id=contact_id, known_skus=known,
                                     reference_field=self.settings.reference_field, opts=opts)
        try:
            doc_id = await self.client.create_document(opts.document_type, plan.body)
        except (NotFound, DataError) as exc:
            raise self._create_refusal(exc, opts) from exc
        if opts.document_type in self.PAYING and opts.mark_paid:
            raw = await self.client.document(opts.document_type, doc_id)
            doc = mapping.parse(mapping.Document, raw)
            if isinstance(doc, mapping.Problem):
                raise TransientError(f"cannot read back the new {LABEL[opts.document_type]}: {doc.message}")
            await self._settle(opts, doc, request)
        if plan.warnings:
            log.warning("order %s in Holded: %s", request.cust_ref, "; ".join(plan.warnings))
            self.delivery_notes[request.cust_ref] = plan.warnings
        return doc_id

    def _create_refusal(self, exc: ConnectorError, opts: HoldedOptions) -> ConnectorError:
        """Holded's refusal of a document, as a setting to fix or an order to fix."""
        info = (exc.detail or exc.message).lower()
        for word, option in (("warehouse", "warehouse_id"), ("channel", "sales_channel_id"),
                             ("design", "design_id"), ("seri", "numbering_series_id"),
                             ("treasury", "treasury_id")):
            if word in info:
                return ConfigError(f"Holded does not know the {option.replace('_', ' ')} set for this route "
                                   f"({exc.detail or exc.message})",
                                   fix=f"pick an existing one in the route's {option} (or leave it empty)")
        if "contact" in info:
            self._contacts = None
            self._generic.clear()
            return TransientError(f"the contact vanished in Holded while the order was sent ({exc.message})")
        if isinstance(exc, NotFound):
            return DataError(exc.message, fix="check the order's data against Holded, then retry it")
        return exc

    async def _settle(self, opts: HoldedOptions, doc: mapping.Document, request: DeliveryRequest) -> None:
        if opts.document_type not in self.PAYING or not opts.mark_paid or doc.pending <= Decimal("0.005"):
            return
        body: dict[str, Any] = {"date": int(request.order.order_date.timestamp()),
                                "amount": float(doc.pending), "desc": f"Order {request.cust_po_no}"}
        if opts.treasury_id:
            body["treasury"] = opts.treasury_id
        try:
            await self.client.pay(opts.document_type, doc.id, body)
        except (NotFound, DataError) as exc:
            raise self._create_refusal(exc, opts) from exc

    # ------------------------------------------------------------------------ products
    async def _known_skus(self, wanted: set[str]) -> set[str]:
        async with self._product_lock:
            age = time.monotonic() - self._skus_at
            # Reread when stale, or when a SKU is missing and the list is more than a few seconds old.
            if age > self.settings.cache_seconds or (wanted - self._skus and age > 5):
                await self._load_products()
        return wanted & self._skus

    async def _load_products(self) -> list[mapping.Product]:
        products = []
        async for raw in self.client.products():
            p = mapping.parse(mapping.Product, raw)
            if isinstance(p, mapping.Problem):
                log.warning("skipping an unreadable product: %s", p.message)
                continue
            products.append(p)
        self._skus, self._skus_at = mapping.sku_index(products), time.monotonic()
        return products

    # ------------------------------------------------------------------------ contacts
    def _prefix(self, request: DeliveryRequest, opts: HoldedOptions) -> str:
        if opts.custom_id_prefix is not None:
            return opts.custom_id_prefix
        return f"{request.source_connection}:" if request.source_connection else ""

    async def _contact(self, request: DeliveryRequest, opts: HoldedOptions) -> str:
        keys = mapping.contact_keys(request.order, opts.contact_policy, self._prefix(request, opts))
        async with self._contact_lock:  # one creator at a time: no duplicate contacts
            if not keys:
                return await self._generic_contact(opts)
            for kind, value in keys:
                found = await self._find_contact(kind, value)
                if found:
                    return found
            custom_id = next((v for k, v in keys if k == "custom_id"), "")
            body = mapping.contact_body(request.order, custom_id)
            try:
                contact_id = await self.client.create_contact(body)
            except TransientError:
                self._contacts = None  # it may exist now: read the list again next time
                raise
            except (DataError, NotFound) as exc:
                raise DataError(f"Holded refused the customer's contact: {exc.message}",
                                fix="correct the customer's name, email or tax id at the source, then retry"
                                ) from exc
            if self._contacts is not None:
                for kind, value in keys:
                    if kind != "custom_id":
                        self._contacts[kind].setdefault(value, contact_id)
            return contact_id

    async def _find_contact(self, kind: str, value: str) -> str | None:
        if kind == "custom_id":
            found = mapping.parse_list(mapping.Contact, await self.client.contacts_with_custom_id(value))
            if isinstance(found, mapping.Problem):
                raise TransientError(f"cannot read Holded's contact search: {found.message}")
            return next((c.id for c in found if mapping.contact_matches(c, kind, value)), None)
        if self._contacts is None or time.monotonic() - self._contacts_at > self.settings.cache_seconds:
            index: dict[str, dict[str, str]] = {"email": {}, "tax_id": {}}
            async for raw in self.client.contacts():
                contact = mapping.parse(mapping.Contact, raw)
                if isinstance(contact, mapping.Problem):
                    continue
                if contact.email.strip():
                    index["email"].setdefault(contact.email.strip().lower(), contact.id)
                for code in {contact.code.strip().upper(), contact.vatnumber.strip().upper()} - {""}:
                    index["tax_id"].setdefault(code, contact.id)
            self._contacts, self._contacts_at = index, time.monotonic()
        return self._contacts.get(kind, {}).get(value)

    async def _generic_contact(self, opts: HoldedOptions) -> str:
        if opts.generic_contact_id:
            return opts.generic_contact_id
        name = opts.generic_contact_name
        if name in self._generic:
            return self._generic[name]
        custom_id = f"orderbridge-generic:{name}"
        found = await self._find_contact("custom_id", custom_id)
        if found is None:
            try:
                found = await self.client.create_contact({"name": name, "type": "client", "isperson": True,
                                                          "CustomId": custom_id})
            except (DataError, NotFound) as exc:
                raise ConfigError(f"Holded refused the generic contact {name!r}: {exc.message}",
                                  fix="set generic_contact_id to an existing Holded contact") from exc
        self._generic[name] = found
        return found

    # ----------------------------------------------------------------------- shipments
    async def shipments(self, window: Window) -> AsyncIterator[Shipment]:
        s = self.settings
        end = int(window.until.timestamp()) + LOOKUP_DAYS * DAY
        start = int((window.until - timedelta(days=s.shipment_lookback_days)).timestamp())
        seen: set[str] = set()
        for drafts in (False, True):
            async for raw in self.client.documents("salesorder", start, end, drafts=drafts):
                doc = mapping.parse(mapping.Document, raw)
                if isinstance(doc, mapping.Problem) or doc.id in seen or doc.id in self._fully_sent:
                    continue
                seen.add(doc.id)
                ref = mapping.reference_of(doc, s.reference_field)
                if not ref:
                    continue  # not an order orderbridge sent
                items = mapping.parse_list(mapping.ShippedItem, await self.client.shipped_items("salesorder", doc.id))
                if isinstance(items, mapping.Problem):
                    log.warning("sales order %s: %s", doc.docNumber or doc.id, items.message)
                    continue
                if not mapping.tracking_numbers(doc.tracking) and any(i.sent > 0 for i in items):
                    # The list was read before the items: units sent (with their tracking) in between
                    # would otherwise be reported without the tracking number, for good.
                    fresh = mapping.parse(mapping.Document, await self.client.document("salesorder", doc.id))
                    if not isinstance(fresh, mapping.Problem):
                        doc = fresh
                if s.wait_for_tracking and not mapping.tracking_numbers(doc.tracking):
                    continue
                for shipment in mapping.shipments_from(doc, items, ref, s.shipment_detail):
                    yield shipment
                if items and mapping.all_sent(items):
                    self._fully_sent.add(doc.id)

    # --------------------------------------------------------------------------- stock
    async def stock_levels(self) -> list[StockLevel]:
        products = await self._load_products()
        items = mapping.stock_items(products)
        chosen = set(self.settings.stock_warehouses)
        listed = mapping.parse_list(mapping.Named, await self.client.warehouses())
        if isinstance(listed, mapping.Problem):
            raise TransientError(listed.message)
        unknown = chosen - {w.id for w in listed}
        if unknown:
            raise ConfigError(f"Holded has no warehouse {', '.join(sorted(unknown))}",
                              fix="correct stock_warehouses in the connection's settings")
        levels: list[StockLevel] = []
        for wh in listed:
            if chosen and wh.id not in chosen:
                continue
            rows = mapping.stock_rows(await self.client.warehouse_stock(wh.id))
            if isinstance(rows, mapping.Problem):
                raise TransientError(f"warehouse {wh.name or wh.id}: {rows.message}")
            levels += mapping.stock_levels(wh.id, rows, items)
        return levels

    # -------------------------------------------------------------------------- cancel
    async def cancel_order(self, backend_order_id: str, request: DeliveryRequest) -> CancelResult:
        opts = self.options(request)
        types = [opts.document_type, *(t for t in LABEL if t != opts.document_type)]
        for doc_type in types:
            try:
                raw = await self.client.document(doc_type, backend_order_id)
            except NotFound:
                continue
            doc = mapping.parse(mapping.Document, raw)
            if isinstance(doc, mapping.Problem):
                raise TransientError(doc.message)
            return await self._cancel(doc_type, doc)
        return CancelResult(canceled=True, note="the document no longer exists in Holded")

    async def _cancel(self, doc_type: str, doc: mapping.Document) -> CancelResult:
        name = f"{LABEL[doc_type]} {doc.docNumber or '(draft) ' + doc.id}"
        if doc_type in self.PAYING:
            return CancelResult(canceled=False, note=f"flagged for the user: {name} is an accounting document and "
                                "is not deleted; issue a credit note in Holded if the sale is void")
        items = mapping.parse_list(mapping.ShippedItem, await self.client.shipped_items(doc_type, doc.id))
        if isinstance(items, mapping.Problem):
            raise TransientError(items.message)
        sent = sum(int(i.sent) for i in items)
        if sent:
            return CancelResult(canceled=False, too_late=True, note=f"{name}: {sent} units already sent")
        try:
            await self.client.delete_document(doc_type, doc.id)
        except DataError as exc:
            return CancelResult(canceled=False, note=f"flagged for the user: Holded refused to delete {name} "
                                f"({exc.detail or exc.message}); cancel it in Holded")
        except NotFound:
            pass
        return CancelResult(canceled=True, note=f"{name} deleted in Holded")

    # --------------------------------------------------------------------------- check
    async def check(self) -> CheckResult:
        try:
            warehouses = mapping.parse_list(mapping.Named, await self.client.warehouses())
            if isinstance(warehouses, mapping.Problem):
                return CheckResult(False, f"Holded answered, but oddly: {warehouses.message}")
            problems = await self._check_ids({w.id for w in warehouses})
        except AuthError as exc:
            return CheckResult(False, f"{exc.message}. {exc.fix}")
        except ConfigError as exc:
            return CheckResult(False, f"{exc.message}; {exc.fix}")
        except TransientError as exc:
            return CheckResult(False, f"Holded could not be reached: {exc.message}")
        except ConnectorError as exc:
            return CheckResult(False, f"Holded refused a check: {exc.message}")
        if problems:
            return CheckResult(False, "; ".join(problems))
        return CheckResult(True, f"Connected to Holded: {len(warehouses)} warehouse(s); settings look right")

    async def _check_ids(self, warehouses: set[str]) -> list[str]:
        s = self.settings
        problems = [f"warehouse {w} does not exist in Holded" for w in
                    [s.warehouse_id, *s.stock_warehouses] if w and w not in warehouses]
        if s.sales_channel_id:
            channels = mapping.parse_list(mapping.Named, await self.client.sales_channels())
            if isinstance(channels, mapping.Problem) or s.sales_channel_id not in {c.id for c in channels}:
                problems.append(f"sales channel {s.sales_channel_id} does not exist in Holded")
        if s.numbering_series_id:
            series = mapping.parse_list(mapping.Named,
                                        await self.client.numbering_series(SERIES_TYPE[s.document_type]))
            if isinstance(series, mapping.Problem) or s.numbering_series_id not in {x.id for x in series}:
                problems.append(f"numbering series {s.numbering_series_id} is not a {LABEL[s.document_type]} "
                                "series in Holded")
        if s.generic_contact_id:
            try:
                await self.client.contact(s.generic_contact_id)
            except NotFound:
                problems.append(f"generic contact {s.generic_contact_id} does not exist in Holded")
        return problems
