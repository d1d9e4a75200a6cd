"""Wix sandbox: in-memory state of the emulated sites (orders, fulfillments, catalog, inventory).

Every site has its own API key, permissions, catalog version and data. State changes made here
(an order placed, paid, refunded, cancelled, fulfilled) are announced to the listeners as Wix
domain events; the webhook module turns them into signed deliveries.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from orderbridge.connectors.wix.sandbox_orders import (
    STORES_APP_ID,
    ZERO_VARIANT,
    WixApiError,
    build_order,
    dec,
    iso,
    money,
    parse_time,
)
from orderbridge.connectors.wix.sandbox_search import SortedIndex

# The sandbox's names for the permission groups an API key can carry.
PERMISSIONS = ("orders.read", "orders.manage", "products.read", "inventory.manage")
CATALOGS = ("V1_CATALOG", "V3_CATALOG", "STORES_NOT_INSTALLED")
PROVIDER_LINKS = {
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={n}",
    "ups": "https://www.ups.com/track?tracknum={n}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
    "dhl": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={n}",
    "canadaPost": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={n}",
}
CANCELABLE = {"INITIALIZED", "APPROVED", "PENDING"}

Event = dict[str, Any]


@dataclass
class StockItem:
    product_id: str
    variant_id: str
    sku: str
    quantity: int = 0
    track: bool = True
    in_stock: bool = True
    revision: int = 1
    item_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    updated: str = ""


@dataclass
class Site:
    site_id: str
    api_key: str
    instance_id: str
    name: str = ""
    catalog_version: str = "V1_CATALOG"
    permissions: set[str] = field(default_factory=lambda: set(PERMISSIONS))
    currency: str = "EUR"
    webhook_url: str = ""
    next_number: int = 10001
    location_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_number: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, SortedIndex] = field(
        default_factory=lambda: {"createdDate": SortedIndex(), "updatedDate": SortedIndex()})
    fulfillments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    stock: dict[tuple[str, str], StockItem] = field(default_factory=dict)
    by_sku: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_item_id: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_inventory_id: dict[str, str] = field(default_factory=dict)  # V1 inventory item id -> product
    history: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"siteId": self.site_id, "apiKey": self.api_key, "instanceId": self.instance_id, "name": self.name,
                "catalogVersion": self.catalog_version, "permissions": sorted(self.permissions),
                "currency": self.currency, "webhookUrl": self.webhook_url, "orders": len(self.orders),
                "products": len(self.products), "locationId": self.location_id}


def now() -> datetime:
    return datetime.now(UTC)


def not_found(what: str) -> WixApiError:
    return WixApiError(404, f"{what} not found", "NOT_FOUND")


class Store:
    def __init__(self, rng: random.Random) -> None:
        self.sites: dict[str, Site] = {}
        self.keys: dict[str, set[str]] = {}  # API key -> the sites of the account owning it
        self.rng = rng
        self.listeners: list[Callable[[Site, Event], None]] = []
        self.reject_duplicate_tracking = False

    # ------------------------------------------------------------------------------ sites
    def add_site(self, spec: dict[str, Any]) -> Site:
        site_id = str(spec.get("siteId") or spec.get("site_id") or uuid.uuid4())
        if site_id in self.sites:
            raise WixApiError(409, f"site {site_id} already exists", "ALREADY_EXISTS")
        catalog = str(spec.get("catalogVersion", spec.get("catalog_version", "V1_CATALOG")))
        if catalog not in CATALOGS:
            raise WixApiError(400, f"catalogVersion must be one of {CATALOGS}", field="catalogVersion")
        site = Site(
            site_id=site_id, api_key=str(spec.get("apiKey") or spec.get("api_key") or f"IST.{uuid.uuid4().hex}"),
            instance_id=str(spec.get("instanceId") or uuid.uuid4()), name=str(spec.get("name", "")),
            catalog_version=catalog, currency=str(spec.get("currency", "EUR")),
            webhook_url=str(spec.get("webhookUrl", spec.get("webhook_url", ""))),
        )
        self.configure(site, spec)
        self.sites[site_id] = site
        self.keys.setdefault(site.api_key, set()).add(site_id)
        return site

    def configure(self, site: Site, spec: dict[str, Any]) -> None:
        if "permissions" in spec:
            unknown = set(spec["permissions"]) - set(PERMISSIONS)
            if unknown:
                raise WixApiError(400, f"unknown permissions {sorted(unknown)}; use {PERMISSIONS}",
                                  field="permissions")
            site.permissions = set(spec["permissions"])
        for key, attr in (("webhookUrl", "webhook_url"), ("webhook_url", "webhook_url"), ("name", "name")):
            if key in spec:
                setattr(site, attr, str(spec[key]))
        if "catalogVersion" in spec:
            if spec["catalogVersion"] not in CATALOGS:
                raise WixApiError(400, f"catalogVersion must be one of {CATALOGS}", field="catalogVersion")
            site.catalog_version = spec["catalogVersion"]

    def site(self, site_id: str) -> Site:
        site = self.sites.get(site_id)
        if site is None:
            raise WixApiError(404, f"site {site_id} not found", "SITE_NOT_FOUND")
        return site

    def emit(self, site: Site, event_type: str, entity_id: str, body_key: str, body: dict[str, Any],
             fqdn: str = "wix.ecom.v1.order") -> None:
        slug = event_type.rsplit(".", 1)[-1].removeprefix("order_").removeprefix("fulfillments_")
        event = {"eventType": event_type, "entityFqdn": fqdn, "slug": slug, "entityId": entity_id,
                 "bodyKey": body_key, "body": body}
        for listener in self.listeners:
            listener(site, event)

    # ------------------------------------------------------------------------------ orders
    def order(self, site: Site, oid: str) -> dict[str, Any]:
        order = site.orders.get(oid)
        if order is None:
            raise not_found(f"order {oid}")
        return order

    def add_order(self, site: Site, spec: dict[str, Any], *, events: bool = True) -> dict[str, Any]:
        for line in spec.get("lines") or []:  # link shorthand lines to the catalog by SKU
            ref = site.by_sku.get(str(line.get("sku", "")))
            if ref and not line.get("productId"):
                line["productId"], line["variantId"] = ref
        order = build_order(spec, number=site.next_number, currency=site.currency, now=now(), rng=self.rng)
        if order["id"] in site.orders:
            raise WixApiError(409, f"order {order['id']} already exists", "ALREADY_EXISTS")
        try:
            site.next_number = max(site.next_number, int(str(order["number"]))) + 1
        except ValueError:
            site.next_number += 1
        site.orders[order["id"]] = order
        site.by_number[str(order["number"])] = order["id"]
        for name, idx in site.indexes.items():
            idx.add(order[name], order["id"])
        if order.get("status") == "APPROVED":
            self._hold_stock(site, order)
        if events:
            self.emit(site, "wix.ecom.v1.order_created", order["id"], "createdEvent", {"entity": order})
            if order.get("status") == "APPROVED":
                self.emit(site, "wix.ecom.v1.order_approved", order["id"], "actionEvent", {"order": order})
        return order

    def touch(self, site: Site, order: dict[str, Any]) -> None:
        idx = site.indexes["updatedDate"]
        idx.remove(order["updatedDate"], order["id"])
        stamp = now()
        previous = parse_time(order["updatedDate"])
        if stamp <= previous:  # keep updatedDate moving forward even within one millisecond
            stamp = previous + timedelta(milliseconds=1)
        order["updatedDate"] = iso(stamp)
        idx.add(order["updatedDate"], order["id"])

    def _activity(self, order: dict[str, Any], kind: str) -> None:
        order.setdefault("activities", []).append(
            {"id": str(uuid.uuid4()), "createdDate": iso(now()), "type": kind})

    def _updated(self, site: Site, order: dict[str, Any]) -> None:
        self.emit(site, "wix.ecom.v1.order_updated", order["id"], "updatedEvent", {"currentEntity": order})

    def pay(self, site: Site, oid: str) -> dict[str, Any]:
        order = self.order(site, oid)
        if order["status"] in ("CANCELED", "REJECTED"):
            raise WixApiError(400, f"order is {order['status']}", "ORDER_NOT_PAYABLE")
        previous = order["paymentStatus"]
        order["paymentStatus"] = "PAID"
        cur = order.get("currency", site.currency)
        total = dec(order.get("priceSummary", {}).get("total"))
        order["balanceSummary"] = {**order.get("balanceSummary", {}), "balance": money(Decimal(0), cur),
                                   "paid": money(total, cur)}
        approved = order["status"] != "APPROVED"
        order["status"] = "APPROVED"
        self._activity(order, "ORDER_PAID")
        self.touch(site, order)
        if approved:
            self._hold_stock(site, order)
        self.emit(site, "wix.ecom.v1.order_payment_status_updated", oid, "actionEvent",
                  {"order": order, "previousPaymentStatus": previous})
        if approved:
            self.emit(site, "wix.ecom.v1.order_approved", oid, "actionEvent", {"order": order})
        self._updated(site, order)
        return order

    def refund(self, site: Site, oid: str, amount: Any = None) -> dict[str, Any]:
        order = self.order(site, oid)
        if order["paymentStatus"] not in ("PAID", "PARTIALLY_REFUNDED"):
            raise WixApiError(400, "only paid orders can be refunded", "ORDER_NOT_PAID")
        cur = order.get("currency", site.currency)
        total = dec(order.get("priceSummary", {}).get("total"))
        balance = order.setdefault("balanceSummary", {})
        refunded = dec(balance.get("refunded")) + (dec(amount) if amount is not None else total)
        refunded = min(refunded, total)
        balance["refunded"] = money(refunded, cur)
        previous = order["paymentStatus"]
        order["paymentStatus"] = "FULLY_REFUNDED" if refunded >= total else "PARTIALLY_REFUNDED"
        self._activity(order, "PAYMENT_REFUNDED")
        self.touch(site, order)
        self.emit(site, "wix.ecom.v1.order_payment_status_updated", oid, "actionEvent",
                  {"order": order, "previousPaymentStatus": previous})
        self._updated(site, order)
        return order

    def cancel(self, site: Site, oid: str, body: dict[str, Any]) -> dict[str, Any]:
        order = self.order(site, oid)
        if order["status"] not in CANCELABLE:
            raise WixApiError(400, f"order {order.get('number')} is {order['status']} and cannot be canceled",
                              "ORDER_ALREADY_CANCELED" if order["status"] == "CANCELED" else "INVALID_ORDER_STATUS")
        restock = bool(body.get("restockAllItems", False))
        was_approved = order["status"] == "APPROVED"
        order["status"] = "CANCELED"
        self._activity(order, "ORDER_CANCELED")
        self.touch(site, order)
        if restock and was_approved:
            self._hold_stock(site, order, sign=+1, why=f"order {order['number']} canceled (restock)")
        self.emit(site, "wix.ecom.v1.order_canceled", oid, "actionEvent", {
            "order": order, "restockAllItems": restock,
            "sendOrderCanceledEmail": bool(body.get("sendOrderCanceledEmail", False)),
            "customMessage": str(body.get("customMessage", "")),
        })
        self._updated(site, order)
        return order

    # ------------------------------------------------------------------------- fulfillments
    def order_fulfillments(self, site: Site, oid: str) -> dict[str, Any]:
        self.order(site, oid)
        return {"orderId": oid, "fulfillments": site.fulfillments.get(oid, [])}

    def _fulfilled(self, site: Site, oid: str) -> dict[str, int]:
        done: dict[str, int] = {}
        for f in site.fulfillments.get(oid, []):
            for li in f["lineItems"]:
                done[li["id"]] = done.get(li["id"], 0) + int(li["quantity"])
        return done

    def create_fulfillment(self, site: Site, oid: str, body: Any) -> dict[str, Any]:
        order = self.order(site, oid)
        spec = body.get("fulfillment") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise WixApiError(400, "fulfillment is required", field="fulfillment")
        items = spec.get("lineItems")
        if not isinstance(items, list) or not items:
            raise WixApiError(400, "fulfillment.lineItems must not be empty", field="fulfillment.lineItems")
        if spec.get("trackingInfo") and spec.get("customInfo"):
            raise WixApiError(400, "give trackingInfo or customInfo, not both", field="fulfillment.trackingInfo")
        ordered = {li["id"]: int(li.get("quantity", 0)) for li in order.get("lineItems", [])}
        done = self._fulfilled(site, oid)
        lines = []
        for item in items:
            lid = str(item.get("id")) if isinstance(item, dict) else ""
            if lid not in ordered:
                raise WixApiError(400, f"line item {lid} is not on order {order.get('number')}",
                                  "LINE_ITEM_NOT_FOUND", data={"lineItemId": lid})
            remaining = ordered[lid] - done.get(lid, 0)
            qty = item.get("quantity", remaining)
            if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0 or qty > remaining:
                raise WixApiError(400, f"cannot fulfill {qty} of line item {lid}: {remaining} unit(s) left",
                                  "QUANTITY_EXCEEDED", data={"lineItemId": lid, "remaining": remaining})
            done[lid] = done.get(lid, 0) + qty
            lines.append({"id": lid, "quantity": qty})
        fulfillment: dict[str, Any] = {"id": str(uuid.uuid4()), "createdDate": iso(now()), "lineItems": lines,
                                       "status": str(spec.get("status", "")), "completed": True}
        tracking = spec.get("trackingInfo")
        if isinstance(tracking, dict):
            number = str(tracking.get("trackingNumber", ""))
            provider = str(tracking.get("shippingProvider", ""))
            if self.reject_duplicate_tracking and number and any(
                    (f.get("trackingInfo") or {}).get("trackingNumber") == number
                    for f in site.fulfillments.get(oid, [])):
                raise WixApiError(409, f"tracking number {number} already exists on this order",
                                  "TRACKING_NUMBER_ALREADY_EXISTS")
            link = str(tracking.get("trackingLink", "")) or PROVIDER_LINKS.get(provider, "").format(n=number)
            fulfillment["trackingInfo"] = {"trackingNumber": number, "shippingProvider": provider,
                                           "trackingLink": link}
        elif isinstance(spec.get("customInfo"), dict):
            fulfillment["customInfo"] = {"fieldsData": dict(spec["customInfo"].get("fieldsData") or {})}
        site.fulfillments.setdefault(oid, []).append(fulfillment)
        self._after_fulfillment_change(site, order, "TRACKING_NUMBER_ADDED" if tracking else "ORDER_FULFILLED")
        return {"fulfillmentId": fulfillment["id"], "orderWithFulfillments": self.order_fulfillments(site, oid)}

    def update_fulfillment(self, site: Site, oid: str, fid: str, body: Any) -> dict[str, Any]:
        order = self.order(site, oid)
        target = next((f for f in site.fulfillments.get(oid, []) if f["id"] == fid), None)
        if target is None:
            raise not_found(f"fulfillment {fid}")
        spec = body.get("fulfillment") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise WixApiError(400, "fulfillment is required", field="fulfillment")
        if "lineItems" in spec and spec["lineItems"] != target["lineItems"]:
            raise WixApiError(400, "line items cannot be changed; delete and re-create the fulfillment",
                              field="fulfillment.lineItems")
        for key in ("trackingInfo", "customInfo", "status", "completed"):
            if key in spec:
                target[key] = spec[key]
        self._after_fulfillment_change(site, order, "TRACKING_NUMBER_EDITED")
        return {"orderWithFulfillments": self.order_fulfillments(site, oid)}

    def delete_fulfillment(self, site: Site, oid: str, fid: str) -> dict[str, Any]:
        order = self.order(site, oid)
        kept = [f for f in site.fulfillments.get(oid, []) if f["id"] != fid]
        if len(kept) == len(site.fulfillments.get(oid, [])):
            raise not_found(f"fulfillment {fid}")
        site.fulfillments[oid] = kept
        self._after_fulfillment_change(site, order, "ORDER_NOT_FULFILLED")
        return {"orderWithFulfillments": self.order_fulfillments(site, oid)}

    def _after_fulfillment_change(self, site: Site, order: dict[str, Any], activity: str) -> None:
        done = self._fulfilled(site, order["id"])
        ordered = {li["id"]: int(li.get("quantity", 0)) for li in order.get("lineItems", [])}
        covered = sum(min(done.get(k, 0), v) for k, v in ordered.items())
        total = sum(ordered.values())
        order["fulfillmentStatus"] = ("FULFILLED" if total and covered >= total
                                      else "PARTIALLY_FULFILLED" if covered else "NOT_FULFILLED")
        self._activity(order, activity)
        self.touch(site, order)
        self.emit(site, "wix.ecom.v1.fulfillments_updated", order["id"], "updatedEvent",
                  {"currentEntity": self.order_fulfillments(site, order["id"])}, fqdn="wix.ecom.v1.fulfillments")
        self._updated(site, order)

    # ---------------------------------------------------------------------- catalog & stock
    def add_product(self, site: Site, spec: dict[str, Any]) -> dict[str, Any]:
        pid = str(spec.get("id") or uuid.uuid4())
        if pid in site.products:
            raise WixApiError(409, f"product {pid} already exists", "ALREADY_EXISTS")
        variants = spec.get("variants") or [{"id": ZERO_VARIANT, "sku": spec.get("sku", ""),
                                             "quantity": spec.get("quantity", 0)}]
        stamp = iso(now())
        product: dict[str, Any] = {
            "id": pid, "name": str(spec.get("name") or f"Product {spec.get('sku', pid[:8])}"),
            "slug": pid[:8], "visible": True, "productType": "physical", "sku": str(spec.get("sku", "")),
            "numericId": str(1000 + len(site.products)),
            "priceData": {"currency": site.currency, "price": float(dec(spec.get("price"), "10"))},
            "manageVariants": bool(spec.get("variants")), "createdDate": stamp, "lastUpdated": stamp,
            "inventoryItemId": str(uuid.uuid4()), "variantIds": [],
        }
        site.by_inventory_id[product["inventoryItemId"]] = pid
        for v in variants:
            vid = str(v.get("id") or uuid.uuid4())
            sku = str(v.get("sku", ""))
            item = StockItem(pid, vid, sku, quantity=int(v.get("quantity", 0)),
                             track=bool(v.get("trackQuantity", spec.get("trackQuantity", True))), updated=stamp)
            item.in_stock = item.quantity > 0 if item.track else bool(v.get("inStock", True))
            product["variantIds"].append(vid)
            product.setdefault("choices", {})[vid] = dict(v.get("choices") or {})
            site.stock[(pid, vid)] = item
            site.by_item_id[item.item_id] = (pid, vid)
            if sku:
                site.by_sku[sku] = (pid, vid)
        site.products[pid] = product
        return self.render_product(site, pid, include_variants=True)

    def render_product(self, site: Site, pid: str, include_variants: bool) -> dict[str, Any]:
        p = site.products[pid]
        items = [site.stock[(pid, vid)] for vid in p["variantIds"]]
        tracked = all(i.track for i in items)
        out = {k: v for k, v in p.items() if k not in ("variantIds", "choices")}
        out["stock"] = {"trackInventory": tracked, "quantity": sum(i.quantity for i in items) if tracked else None,
                        "inStock": any(i.in_stock for i in items),
                        "inventoryStatus": "IN_STOCK" if any(i.in_stock for i in items) else "OUT_OF_STOCK"}
        if include_variants:
            out["variants"] = [{
                "id": i.variant_id, "choices": p["choices"].get(i.variant_id, {}),
                "variant": {"priceData": p["priceData"], "sku": i.sku, "visible": True},
                "stock": {"trackQuantity": i.track, "quantity": i.quantity if i.track else None,
                          "inStock": i.in_stock},
            } for i in items]
        return out

    def set_stock(self, site: Site, item: StockItem, *, quantity: int | None = None, track: bool | None = None,
                  in_stock: bool | None = None, via: str) -> None:
        old = item.quantity
        if track is not None:
            item.track = track
        if quantity is not None:
            item.quantity = quantity
        if item.track:
            item.in_stock = item.quantity > 0
        elif in_stock is not None:
            item.in_stock = in_stock
        item.revision += 1
        item.updated = iso(now())
        site.products[item.product_id]["lastUpdated"] = item.updated
        site.history.append({"at": item.updated, "sku": item.sku, "productId": item.product_id,
                             "variantId": item.variant_id, "old": old, "new": item.quantity,
                             "trackQuantity": item.track, "inStock": item.in_stock, "via": via})

    def _hold_stock(self, site: Site, order: dict[str, Any], sign: int = -1, why: str = "") -> None:
        """Approval holds stock of tracked variants (and a restocking cancel gives it back)."""
        for li in order.get("lineItems", []):
            ref = li.get("catalogReference") or {}
            key = (str(ref.get("catalogItemId", "")), str((ref.get("options") or {}).get("variantId") or ZERO_VARIANT))
            if ref.get("appId") not in (STORES_APP_ID, None) or key not in site.stock:
                continue
            item = site.stock[key]
            if item.track:
                qty = int(li.get("quantity", 0))
                self.set_stock(site, item, quantity=item.quantity + sign * qty,
                               via=why or f"order {order.get('number')} approved")

    def stock_item_v3(self, site: Site, item: StockItem) -> dict[str, Any]:
        return {"id": item.item_id, "productId": item.product_id, "variantId": item.variant_id,
                "locationId": site.location_id, "trackQuantity": item.track,
                "quantity": item.quantity if item.track else None, "inStock": item.in_stock,
                "availabilityStatus": "IN_STOCK" if item.in_stock else "OUT_OF_STOCK",
                "revision": str(item.revision), "updatedDate": item.updated,
                "product": {"name": site.products[item.product_id]["name"], "variantSku": item.sku}}
