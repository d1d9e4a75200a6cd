"""TradeGecko / QuickBooks Commerce as a backend: orders in; fulfillments, stock and voids back."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar, Literal

from cachetools import LRUCache
from pydantic import Field, model_validator

from orderbridge.connectors.base import (
    BackendConnector,
    BackendSettings,
    CancelResult,
    Capabilities,
    CheckResult,
    ConnectionContext,
    Credentials,
    DeliveryRequest,
    Window,
)
from orderbridge.connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    DataError,
    NotFound,
)
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.tradegecko import mapping
from orderbridge.connectors.tradegecko.client import ID_BATCH, Reply, Tokens, TradeGeckoClient
from orderbridge.domain.models import Shipment, StockLevel

log = logging.getLogger("orderbridge.connectors.tradegecko")

# The references of the orders this connector created last (about 300 bytes each with the cache's
# own keeping): the ones a fulfilment is likely to name soon. A fulfilment of an older order costs
# its page one batched read of orders by id. Fixed, so that memory does not grow with the volume.
ORDER_REFS_KEPT = 10_000
SKU_BATCH = 50  # SKUs per variant lookup: keeps the URL well under the 414 limit


class TradeGeckoCredentials(Credentials):
    access_token: str = Field(
        default="",
        description="Privileged Access Token (TradeGecko: Apps > API > Privileged Token; it never expires), or "
                    "the current OAuth access token. Use a TradeGecko user that no other integration uses.",
    )
    refresh_token: str = Field(default="", description="OAuth refresh token (only for an OAuth application).")
    client_id: str = Field(default="", description="OAuth application id (only with a refresh token).")
    client_secret: str = Field(default="", description="OAuth application secret (only with a refresh token).")

    @model_validator(mode="after")
    def _usable(self) -> TradeGeckoCredentials:
        oauth = [self.refresh_token, self.client_id, self.client_secret]
        if any(oauth) and not all(oauth):
            raise ValueError("refreshing needs client_id, client_secret and refresh_token together")
        if not self.access_token and not all(oauth):
            raise ValueError("give an access_token, or an OAuth client_id, client_secret and refresh_token")
        return self


class TradeGeckoSettings(BackendSettings):
    order_status: Literal["active", "finalized"] = Field(
        default="active",
        description="Status of the orders created. Active commits stock and can still be edited; Finalized "
                    "locks the order so it can be invoiced, packed and shipped at once.",
    )
    stock_location_id: int | None = Field(
        default=None, ge=1,
        description="Location (warehouse) ID the orders are created in, and shipped from. Empty: the customer's "
                    "default location, else the account's primary location.",
    )
    order_number_field: Literal["notes", "order_number", "tags", "none"] = Field(
        default="notes",
        description="Where the full order number (cust_po_no) goes; the short, unique one (cust_ref) is always "
                    "the Reference number. notes: a line 'Order number: ...'; order_number: TradeGecko's own "
                    "order number (duplicates are allowed unless the account refuses them); tags: as a tag.",
    )
    inventory_location_ids: list[int] = Field(
        default_factory=list,
        description="Location IDs whose stock is reported for inventory sync. Empty: every location.",
    )
    untracked_stock_quantity: int | None = Field(
        default=None, ge=0,
        description="Quantity to report for products whose stock TradeGecko does not track. Empty: leave them out.",
    )
    customer_company_id: int | None = Field(
        default=None, ge=1,
        description="Put every order under this existing company (e.g. one named after the marketplace). "
                    "Empty: find the buyer's company by email (or create a new one) for each order.",
    )
    customer_type: Literal["consumer", "business"] = Field(
        default="consumer", description="Company type of the customers created for buyers."
    )
    ship_method_field: Literal["shipping_line", "notes", "none"] = Field(
        default="shipping_line",
        description="Where the ship method goes: shipping_line: the label of the shipping line (line type "
                    "'shipping', where TradeGecko's channel integrations put it); notes: a line in the notes.",
    )
    shipping_line_label: str = Field(
        default="Shipping", min_length=1, max_length=100,
        description="Label of the shipping charge line when no ship method is known.",
    )
    send_prices: bool = Field(
        default=True,
        description="Send the marketplace's prices, discounts and shipping charge. Off: TradeGecko prices the "
                    "lines from the price list.",
    )
    price_list_id: str | None = Field(
        default=None,
        description="Price list for lines without a price (e.g. retail, wholesale, or a price list ID). "
                    "Empty: the account's default.",
    )
    tax_treatment: Literal["account_default", "exclusive", "inclusive"] = Field(
        default="account_default",
        description="Whether the line prices sent exclude tax (tax added on top) or include it.",
    )
    tax_type_id: int | None = Field(
        default=None, ge=1, description="Tax type for every line. Empty: the account's default sales tax type."
    )
    tax_rate_from_source: bool = Field(
        default=False,
        description="Set each line's tax rate from the marketplace's tax amount, so totals match the marketplace.",
    )
    order_discount_line: bool = Field(
        default=True,
        description="Send an order-level discount as a freeform discount line (negative price).",
    )
    discount_line_label: str = Field(default="Discount", min_length=1, max_length=100,
                                     description="Label of the discount line.")
    tags: list[str] = Field(default_factory=list, description="Tags added to every order created.")
    tag_with_source: bool = Field(default=True, description="Also tag each order with its source connection's name.")
    variant_cache_seconds: float = Field(
        default=300, ge=0, le=86400,
        description="How long a SKU's product is remembered between orders (fewer calls; 0: look it up each time).",
    )


class TradeGeckoConnector(BackendConnector):
    type_name = "tradegecko"
    display_name = "TradeGecko"
    settings_model = TradeGeckoSettings
    credentials_model = TradeGeckoCredentials
    capabilities = Capabilities(deliver=True, lookup_by_reference=True, idempotency_key=True,
                                shipment_pickup=True, inventory_pickup=True, cancel=True)
    production_url = "https://api.tradegecko.com"
    sandbox_name = "tradegecko"
    api_name: ClassVar[str] = "tradegecko"  # both product names share one API and one rate budget

    def __init__(self, ctx: ConnectionContext) -> None:
        super().__init__(ctx)
        creds: TradeGeckoCredentials = ctx.credentials
        self.client = TradeGeckoClient(
            ctx.http,
            Tokens(creds.access_token, creds.refresh_token, creds.client_id, creds.client_secret),
            product=self.display_name,
        )
        self._variants: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        # Each order's reference as created, for the shipments that name only the order's id: the
        # recent ones (a shipment usually follows its order within hours); older ones are read.
        self._order_refs: LRUCache[int, str] = LRUCache(maxsize=ORDER_REFS_KEPT)

    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        return RateSpec(calls=300, period=300.0)  # per (application, account), fixed 5-minute window

    @classmethod
    def account_key(cls, credentials: Any, base_url: str) -> str:
        # The API counts per (application, account). An OAuth app is known by its client id; a
        # privileged token by a digest of itself (never the token: keys may be logged).
        who = getattr(credentials, "client_id", "") or hashlib.sha256(
            str(getattr(credentials, "access_token", "")).encode()).hexdigest()[:16]
        return f"{cls.api_name}:{base_url}:{who}"

    # ------------------------------------------------------------------- credentials
    def rotated_credentials(self) -> dict[str, Any] | None:
        if not self.client.tokens.rotated:
            return None
        self.client.tokens.rotated = False
        return self.current_credentials()

    def current_credentials(self) -> dict[str, str]:
        """The credentials in force (the refresh token rotates at each refresh)."""
        return self.client.tokens.as_credentials()

    # ------------------------------------------------------------------------- check
    async def check(self) -> CheckResult:
        name = self.display_name
        try:
            account = (await self.client.get("/accounts/current")).one("account")
        except AuthError as exc:
            return CheckResult(False, f"{exc.message}. {exc.fix}".strip())
        except ConnectorError as exc:
            return CheckResult(False, f"{name} could not be reached: {exc.message}")
        problems = []
        known = {i for i in (mapping.record_id(x) for x in account.get("location_ids") or []) if i is not None}
        wanted = ([self.settings.stock_location_id] if self.settings.stock_location_id else []) + list(
            self.settings.inventory_location_ids)
        missing = sorted({w for w in wanted if known and w not in known})
        if missing:
            problems.append(f"location ID {', '.join(map(str, missing))} is not in this {name} account "
                            f"(its locations: {', '.join(map(str, sorted(known)))})")
        if self.settings.customer_company_id:
            try:
                await self.client.get(f"/companies/{self.settings.customer_company_id}")
            except NotFound:
                problems.append(f"company ID {self.settings.customer_company_id} does not exist in {name}")
            except ConnectorError as exc:
                problems.append(exc.message)
        label = f"{name} account {account.get('name') or account.get('id')!r}"
        if problems:
            return CheckResult(False, f"Connected to {label}, but " + "; ".join(problems))
        return CheckResult(True, f"Connected to {label}")

    # ---------------------------------------------------------------------- delivery
    async def find_order(self, request: DeliveryRequest) -> str | None:
        reply = await self.client.get("/orders", {"reference_number": request.cust_ref, "limit": 50})
        found = [o for o in reply.many("orders") if o.get("reference_number") == request.cust_ref]
        if not found:
            return None
        # The original create is the oldest live one; a void one still means "it was created".
        found.sort(key=lambda o: (o.get("status") == "void", mapping.record_id(o.get("id")) or 0))
        return str(found[0]["id"])

    async def create_order(self, request: DeliveryRequest, idempotency_key: str) -> str:
        variants = await self._resolve(request)
        customer = await self._customer(request, idempotency_key)
        body = mapping.order_payload(request, variants, customer, self.settings)
        try:
            reply = await self.client.call("POST", "/orders", body=body, idempotency_key=idempotency_key,
                                           what=f"order {request.cust_ref}")
        except DataError as exc:
            if "variant" not in exc.message:
                raise
            # A cached product may have been archived or deleted since: look again, once.
            for sku in {ln.sku for ln in request.order.lines}:
                self._variants.pop(sku, None)
            variants = await self._resolve(request)
            body = mapping.order_payload(request, variants, customer, self.settings)
            reply = await self.client.call("POST", "/orders", body=body, idempotency_key=f"{idempotency_key}:2",
                                           what=f"order {request.cust_ref}")
        order_id = mapping.record_id(reply.one("order").get("id"))
        if order_id is None:
            raise DataError(f"{self.display_name} created order {request.cust_ref} but sent no id",
                            fix="look the order up in TradeGecko; it is found by reference on the next attempt")
        self._order_refs[order_id] = request.cust_ref
        return str(order_id)

    async def _resolve(self, request: DeliveryRequest) -> dict[str, int]:
        skus = list(dict.fromkeys(ln.sku for ln in request.order.lines))
        matches = await self._lookup_variants(skus)
        return mapping.resolve_variants(skus, matches, self.display_name)

    async def _lookup_variants(self, skus: list[str]) -> dict[str, list[dict[str, Any]]]:
        now = time.monotonic()
        ttl = self.settings.variant_cache_seconds
        out: dict[str, list[dict[str, Any]]] = {}
        todo = []
        for sku in skus:
            cached = self._variants.get(sku)
            if cached and now - cached[0] < ttl:
                out[sku] = cached[1]
            else:
                todo.append(sku)
        for i in range(0, len(todo), SKU_BATCH):
            batch = todo[i : i + SKU_BATCH]
            found: dict[str, list[dict[str, Any]]] = {s: [] for s in batch}
            async for reply in self.client.pages("/variants", {"sku": batch}):
                for v in reply.many("variants"):
                    if v.get("sku") in found:
                        found[str(v["sku"])].append(v)
            for sku, rows in found.items():
                out[sku] = rows
                if len(rows) == 1 and ttl > 0:  # only clear answers are remembered
                    self._variants[sku] = (now, rows)
        return out

    async def _customer(self, request: DeliveryRequest, key: str) -> mapping.Customer:
        ship, bill = request.order.ship_to, request.order.bill_to
        separate_bill = not bill.is_empty() and not mapping.address_matches(mapping.address_payload(ship, ""), bill)
        company_id = self.settings.customer_company_id or await self._find_company(request)
        if company_id is None:  # a new customer: created with its addresses inside the order
            ship_label = mapping.address_label(ship, [])
            return mapping.Customer(
                company=mapping.company_payload(request, self.settings.customer_type),
                shipping_address=mapping.address_payload(ship, ship_label),
                billing_address=mapping.address_payload(bill, mapping.address_label(bill, [ship_label]))
                if separate_bill else None,
            )
        existing = []
        async for reply in self.client.pages("/addresses", {"company_id": company_id}):
            existing += reply.many("addresses")
        labels = [str(a.get("label") or "") for a in existing]

        def pick(addr: Any) -> tuple[int | None, dict[str, Any] | None]:
            for a in existing:
                if mapping.address_matches(a, addr) and mapping.record_id(a.get("id")) is not None:
                    return mapping.record_id(a.get("id")), None
            label = mapping.address_label(addr, labels)
            labels.append(label)
            return None, mapping.address_payload(addr, label)

        ship_id, ship_new = pick(ship)
        bill_id, bill_new = pick(bill) if separate_bill else (None, None)
        return mapping.Customer(company_id=company_id, shipping_address_id=ship_id, shipping_address=ship_new,
                                billing_address_id=bill_id, billing_address=bill_new)

    async def _find_company(self, request: DeliveryRequest) -> int | None:
        field, value = mapping.customer_lookup(request)
        reply = await self.client.get("/companies", {field: value, "limit": 50})
        ids = sorted(i for i in (mapping.record_id(c.get("id")) for c in reply.many("companies")
                                 if str(c.get(field) or "").lower() == value.lower()) if i is not None)
        return ids[0] if ids else None

    # ---------------------------------------------------------------------- shipments
    async def shipments(self, window: Window) -> AsyncIterator[Shipment]:
        params: dict[str, Any] = {"status": "fulfilled", "order": "created_at asc",
                                  "include": "fulfillment_line_items",
                                  "updated_at_max": mapping.api_time(window.until)}
        if window.since:
            params["updated_at_min"] = mapping.api_time(window.since)
        async for reply in self.client.pages("/fulfillments", params):
            page = reply.many("fulfillments")
            recorded = await window.recorded_among([str(ful.get("id")) for ful in page])
            fulfillments = [ful for ful in page if str(ful.get("id")) not in recorded]
            lines = await self._fulfillment_lines(reply, fulfillments)
            skus = await self._missing_skus(lines)
            refs = await self._order_references(fulfillments)
            for ful in fulfillments:
                fid = mapping.record_id(ful.get("id"))
                oid = mapping.record_id(ful.get("order_id"))
                result = mapping.map_fulfillment(ful, lines.get(fid or 0, []), refs.get(oid or 0, ""), skus)
                if isinstance(result, mapping.MappingFailure):
                    log.warning("%s fulfillment %s skipped: %s", self.display_name, result.external_id,
                                result.error)
                    continue
                yield result

    async def _fulfillment_lines(
        self, reply: Reply, fulfillments: list[dict[str, Any]]
    ) -> dict[int, list[dict[str, Any]]]:
        """Lines per fulfillment: sideloaded when the API obliges, else fetched in batches."""
        by_ful: dict[int, list[dict[str, Any]]] = {}
        sideloaded = reply.data.get("fulfillment_line_items")
        for line in sideloaded if isinstance(sideloaded, list) else []:
            fid = mapping.record_id(line.get("fulfillment_id")) if isinstance(line, dict) else None
            if fid is not None:
                by_ful.setdefault(fid, []).append(line)
        missing = [fid for f in fulfillments if (fid := mapping.record_id(f.get("id"))) is not None
                   and fid not in by_ful and f.get("fulfillment_line_item_ids") != []]
        for batch in _batches(missing, ID_BATCH):
            async for page in self.client.pages("/fulfillment_line_items",
                                                {"fulfillment_id": ",".join(map(str, batch))}):
                for line in page.many("fulfillment_line_items"):
                    fid = mapping.record_id(line.get("fulfillment_id"))
                    if fid is not None:
                        by_ful.setdefault(fid, []).append(line)
        return by_ful

    async def _missing_skus(self, lines: dict[int, list[dict[str, Any]]]) -> dict[int, str]:
        """SKUs of lines that name only their variant or order line (older API versions)."""
        flat = [ln for group in lines.values() for ln in group if not ln.get("variant_sku")]
        variant_of: dict[int, int] = {}
        need_line = [i for ln in flat if ln.get("variant_id") is None
                     and (i := mapping.record_id(ln.get("order_line_item_id"))) is not None]
        for item in await self.client.by_ids("order_line_items", sorted(set(need_line))):
            lid, vid = mapping.record_id(item.get("id")), mapping.record_id(item.get("variant_id"))
            if lid is not None and vid is not None:
                variant_of[lid] = vid
        for ln in flat:
            lid = mapping.record_id(ln.get("order_line_item_id"))
            if ln.get("variant_id") is None and lid in variant_of:
                ln["variant_id"] = variant_of[lid]
        vids = sorted({vid for ln in flat if (vid := mapping.record_id(ln.get("variant_id"))) is not None})
        skus: dict[int, str] = {}
        for variant in await self.client.by_ids("variants", vids, status=["active", "archived"]):
            found = mapping.record_id(variant.get("id"))
            if found is not None and variant.get("sku"):
                skus[found] = str(variant["sku"])
        return skus

    async def _order_references(self, fulfillments: list[dict[str, Any]]) -> dict[int, str]:
        wanted = {i for f in fulfillments if (i := mapping.record_id(f.get("order_id"))) is not None}
        todo = sorted(wanted - self._order_refs.keys())
        every_status = ["draft", "active", "finalized", "fulfilled", "void", "deleted"]
        for order in await self.client.by_ids("orders", todo, status=every_status):
            oid = mapping.record_id(order.get("id"))
            if oid is not None:
                self._order_refs[oid] = str(order.get("reference_number") or "")
        return {i: self._order_refs.get(i, "") for i in wanted}

    # ------------------------------------------------------------------------- stock
    async def stock_levels(self) -> list[StockLevel]:
        locations: dict[int, str] = {}
        async for reply in self.client.pages("/locations"):
            for loc in reply.many("locations"):
                lid = mapping.record_id(loc.get("id"))
                if lid is not None:
                    locations[lid] = str(loc.get("label") or lid)
        counted = set(self.settings.inventory_location_ids) or None
        if counted and counted - locations.keys():
            missing = ", ".join(map(str, sorted(counted - locations.keys())))
            raise ConfigError(f"Inventory location ID {missing} is not an active {self.display_name} location",
                              fix="correct 'inventory_location_ids' in the connection's settings "
                                  f"(locations: {', '.join(f'{k} {v}' for k, v in sorted(locations.items()))})")
        merged: dict[tuple[str, str], StockLevel] = {}
        async for reply in self.client.pages("/variants"):
            for variant in reply.many("variants"):
                levels = mapping.variant_stock(variant, locations, counted, self.settings.untracked_stock_quantity)
                if isinstance(levels, mapping.MappingFailure):
                    log.warning("%s stock of variant %s skipped: %s", self.display_name, levels.external_id,
                                levels.error)
                    continue
                for level in levels:  # SKUs are not unique in TradeGecko: add duplicates up
                    have = merged.get((level.sku, level.warehouse))
                    if have is None:
                        merged[(level.sku, level.warehouse)] = level
                    else:
                        have.on_hand += level.on_hand
                        have.committed += level.committed
                        have.available += level.available
        return list(merged.values())

    # ------------------------------------------------------------------------ cancel
    async def cancel_order(self, backend_order_id: str, request: DeliveryRequest) -> CancelResult:
        name = self.display_name
        try:
            order = (await self.client.get(f"/orders/{backend_order_id}")).one("order")
        except NotFound:
            return CancelResult(canceled=False, note=f"{name} has no order {backend_order_id}; check it by hand")
        late = self._too_late(order)
        if late:
            return late
        if order.get("status") in ("void", "deleted"):
            return CancelResult(canceled=True, note=f"already {order['status']} in {name}")
        try:
            await self.client.call("POST", f"/orders/{backend_order_id}/actions/void", body={},
                                   idempotency_key=f"void-{backend_order_id}", what=f"voiding order {request.cust_ref}")
        except DataError as exc:
            # Shipped (or voided) between our read and the void: read again to say which.
            order = (await self.client.get(f"/orders/{backend_order_id}")).one("order")
            if order.get("status") == "void":
                return CancelResult(canceled=True, note=f"voided in {name}")
            return self._too_late(order) or CancelResult(canceled=False, note=exc.message)
        return CancelResult(canceled=True, note=f"voided in {name} (order {order.get('order_number') or ''})".strip())

    def _too_late(self, order: dict[str, Any]) -> CancelResult | None:
        shipped = order.get("fulfillment_status")
        if order.get("status") == "fulfilled" or shipped in ("shipped", "partial"):
            part = "partly shipped" if shipped == "partial" else "already shipped"
            return CancelResult(canceled=False, too_late=True,
                                note=f"{part} in {self.display_name}; not voided (handle the return by hand)")
        return None


class QuickBooksCommerceConnector(TradeGeckoConnector):
    """TradeGecko under its 2020 name: the same API."""

    type_name = "quickbooks_commerce"
    display_name = "QuickBooks Commerce"


def _batches(items: Iterable[int], size: int) -> list[list[int]]:
    seq = list(items)
    return [seq[i : i + size] for i in range(0, len(seq), size)]
