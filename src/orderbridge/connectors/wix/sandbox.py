"""Emulator of the Wix REST APIs orderbridge uses: eCommerce orders and fulfillments, Stores catalog
and inventory (V1 and V3), app webhooks, with Wix's auth headers, error bodies and rate limit.

Served by ``orderbridge sandbox wix``. See docs/sandboxes/wix.md for every endpoint, the admin
surface under ``/__sandbox__/`` and the options.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from orderbridge.connectors.sandbox_kit import FixedWindowLimiter, RateLimitExceeded, SandboxKit
from orderbridge.connectors.wix import sandbox_catalog as cat
from orderbridge.connectors.wix.sandbox_orders import WixApiError, generated_spec, parse_time
from orderbridge.connectors.wix.sandbox_search import search
from orderbridge.connectors.wix.sandbox_store import Site, Store, now
from orderbridge.connectors.wix.sandbox_webhooks import Webhooks

DEMO_SITE = {"siteId": "6f0c1a52-8d3e-4d7a-9c1b-0d5e2a7b4c91", "apiKey": "IST.sandbox-demo-api-key",
             "name": "Demo store"}

Handler = Callable[[Request, Site], Awaitable[Any]]


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"x-wix-request-id": uuid.uuid4().hex})


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise WixApiError(400, "request body is not valid JSON", "INVALID_ARGUMENT") from None
    if not isinstance(data, dict):
        raise WixApiError(400, "request body must be a JSON object", "INVALID_ARGUMENT")
    return data


def create_app(options: dict[str, Any] | None = None) -> Starlette:
    opts = dict(options or {})
    limit = {"calls": 200, "period": 60.0, "enabled": True, **(opts.get("rate_limit") or {})}
    kit = SandboxKit("wix", rate_limit=FixedWindowLimiter(
        calls=int(limit["calls"]), period=float(limit["period"]), enabled=bool(limit["enabled"])),
        seed=int(opts.get("seed", 0)))
    store = Store(random.Random(int(opts.get("seed", 0))))
    store.reject_duplicate_tracking = bool(opts.get("reject_duplicate_tracking", False))
    hooks = Webhooks(store, opts)
    retry_after = bool(opts.get("retry_after", False))
    sites = opts.get("sites")
    for spec in sites if sites is not None else ([DEMO_SITE] if opts.get("demo_site", True) else []):
        store.add_site(dict(spec))

    # ------------------------------------------------------------------------------ auth
    def authenticate(request: Request, permission: str) -> Site:
        key = request.headers.get("authorization", "").strip()
        key = key[7:].strip() if key.lower().startswith("bearer ") else key
        if not key or key not in store.keys:
            raise WixApiError(401, "Unauthorized: the API key is missing or not valid", "UNAUTHENTICATED")
        site_id = request.headers.get("wix-site-id", "").strip()
        if request.headers.get("wix-account-id"):
            raise WixApiError(400, "send either wix-site-id or wix-account-id, not both", "INVALID_ARGUMENT")
        if not site_id:
            raise WixApiError(400, "wix-site-id header is required for site-level APIs", "MISSING_SITE_ID")
        site = store.site(site_id)
        if site_id not in store.keys[key]:
            raise WixApiError(403, "the API key does not belong to the account that owns this site",
                              "SITE_NOT_OWNED")
        if permission not in site.permissions:
            raise WixApiError(403, f"the API key lacks the permission {permission}", "PERMISSION_DENIED",
                              data={"missingPermission": permission})
        return site

    def api(permission: str, catalog: str = "") -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    site = authenticate(request, permission)
                    if catalog:
                        cat.require_catalog(site, catalog)
                    return _json(await fn(request, site))
                except WixApiError as exc:
                    return _json(exc.body(), exc.status)
            return endpoint
        return wrap

    def rate_limited(request: Request, exc: RateLimitExceeded) -> Response:
        err = WixApiError(429, "Too many requests: rate limit exceeded", "TOO_MANY_REQUESTS")
        headers = {"x-wix-request-id": uuid.uuid4().hex}
        if retry_after:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return JSONResponse(err.body(), status_code=429, headers=headers)

    # ---------------------------------------------------------------------------- orders
    @api("orders.read")
    async def search_orders(request: Request, site: Site) -> Any:
        return search(site.orders, site.indexes, await _body(request))

    @api("orders.read")
    async def get_order(request: Request, site: Site) -> Any:
        return {"order": store.order(site, request.path_params["oid"])}

    @api("orders.manage")
    async def cancel_order(request: Request, site: Site) -> Any:
        return {"order": store.cancel(site, request.path_params["oid"], await _body(request))}

    @api("orders.manage")
    async def create_fulfillment(request: Request, site: Site) -> Any:
        return store.create_fulfillment(site, request.path_params["oid"], await _body(request))

    @api("orders.read")
    async def list_fulfillments(request: Request, site: Site) -> Any:
        return {"orderWithFulfillments": store.order_fulfillments(site, request.path_params["oid"])}

    @api("orders.read")
    async def list_by_ids(request: Request, site: Site) -> Any:
        ids = (await _body(request)).get("orderIds") or []
        return {"ordersWithFulfillments": [store.order_fulfillments(site, str(i)) for i in ids
                                           if str(i) in site.orders]}

    @api("orders.manage")
    async def update_fulfillment(request: Request, site: Site) -> Any:
        p = request.path_params
        return store.update_fulfillment(site, p["oid"], p["fid"], await _body(request))

    @api("orders.manage")
    async def delete_fulfillment(request: Request, site: Site) -> Any:
        p = request.path_params
        return store.delete_fulfillment(site, p["oid"], p["fid"])

    # --------------------------------------------------------------------------- catalog
    @api("products.read", "V1_CATALOG")
    async def query_products(request: Request, site: Site) -> Any:
        return cat.query_products(store, site, await _body(request))

    @api("products.read", "V1_CATALOG")
    async def get_product(request: Request, site: Site) -> Any:
        return cat.get_product(store, site, request.path_params["pid"])

    @api("products.read", "V1_CATALOG")
    async def query_inventory_v1(request: Request, site: Site) -> Any:
        return cat.query_inventory_v1(site, await _body(request))

    @api("products.read", "V1_CATALOG")
    async def get_variants_v1(request: Request, site: Site) -> Any:
        return cat.get_variants_v1(site, request.path_params["pid"], await _body(request))

    @api("inventory.manage", "V1_CATALOG")
    async def patch_by_product(request: Request, site: Site) -> Any:
        return cat.patch_inventory_v1(store, site, request.path_params["pid"], await _body(request), False)

    @api("inventory.manage", "V1_CATALOG")
    async def patch_by_inventory_id(request: Request, site: Site) -> Any:
        return cat.patch_inventory_v1(store, site, request.path_params["iid"], await _body(request), True)

    @api("inventory.manage", "V1_CATALOG")
    async def decrement(request: Request, site: Site) -> Any:
        return cat.adjust_inventory_v1(store, site, await _body(request), -1)

    @api("inventory.manage", "V1_CATALOG")
    async def increment(request: Request, site: Site) -> Any:
        return cat.adjust_inventory_v1(store, site, await _body(request), +1)

    @api("products.read", "V3_CATALOG")
    async def query_variants(request: Request, site: Site) -> Any:
        return cat.query_variants_v3(site, await _body(request))

    @api("products.read", "V3_CATALOG")
    async def query_inventory_v3(request: Request, site: Site) -> Any:
        return cat.query_inventory_v3(store, site, await _body(request), "query")

    @api("products.read", "V3_CATALOG")
    async def search_inventory_v3(request: Request, site: Site) -> Any:
        return cat.query_inventory_v3(store, site, await _body(request), "search")

    @api("products.read", "V3_CATALOG")
    async def get_inventory_v3(request: Request, site: Site) -> Any:
        return cat.get_inventory_v3(store, site, request.path_params["iid"])

    @api("inventory.manage", "V3_CATALOG")
    async def patch_inventory_v3(request: Request, site: Site) -> Any:
        return cat.patch_inventory_v3(store, site, request.path_params["iid"], await _body(request))

    routes = [
        Route("/ecom/v1/orders/search", search_orders, methods=["POST"]),
        Route("/ecom/v1/orders/{oid}", get_order, methods=["GET"]),
        Route("/ecom/v1/orders/{oid}/cancel", cancel_order, methods=["POST"]),
        Route("/ecom/v1/fulfillments/orders/{oid}/create-fulfillment", create_fulfillment, methods=["POST"]),
        Route("/ecom/v1/fulfillments/orders/{oid}", list_fulfillments, methods=["GET"]),
        Route("/ecom/v1/fulfillments/list-by-ids", list_by_ids, methods=["POST"]),
        Route("/ecom/v1/fulfillments/{fid}/orders/{oid}", update_fulfillment, methods=["PATCH"]),
        Route("/ecom/v1/fulfillments/{fid}/orders/{oid}", delete_fulfillment, methods=["DELETE"]),
        Route("/stores/v1/products/query", query_products, methods=["POST"]),
        Route("/stores/v1/products/{pid}", get_product, methods=["GET"]),
        Route("/stores/v2/inventoryItems/query", query_inventory_v1, methods=["POST"]),
        Route("/stores/v2/inventoryItems/decrement", decrement, methods=["POST"]),
        Route("/stores/v2/inventoryItems/increment", increment, methods=["POST"]),
        Route("/stores/v2/inventoryItems/product/{pid}/getVariants", get_variants_v1, methods=["POST"]),
        Route("/stores/v2/inventoryItems/product/{pid}", patch_by_product, methods=["PATCH"]),
        Route("/stores/v2/inventoryItems/{iid}", patch_by_inventory_id, methods=["PATCH"]),
        Route("/stores/v3/products/query-variants", query_variants, methods=["POST"]),
        Route("/stores/v3/inventory-items/query", query_inventory_v3, methods=["POST"]),
        Route("/stores/v3/inventory-items/search", search_inventory_v3, methods=["POST"]),
        Route("/stores/v3/inventory-items/{iid}", get_inventory_v3, methods=["GET"]),
        Route("/stores/v3/inventory-items/{iid}", patch_inventory_v3, methods=["PATCH"]),
    ]
    admin = _admin_routes(store, hooks)
    return kit.app(routes, admin, rate_limited_response=rate_limited,
                   rate_key=lambda r: r.headers.get("wix-site-id", "") or "no-site")


def _admin_routes(store: Store, hooks: Webhooks) -> list[Route]:
    """``/__sandbox__/...``: sites, seeding, acting as buyer and Wix, inspection, webhooks."""

    def admin(fn: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await fn(request)
                return result if isinstance(result, Response) else JSONResponse(result)
            except WixApiError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"message": f"bad admin request: {exc!r}"}, status_code=400)
        return endpoint

    def site_of(request: Request) -> Site:
        return store.site(request.path_params["site"])

    def events_on(request: Request) -> bool:
        return request.query_params.get("events", "1") not in ("0", "false", "no")

    @admin
    async def sites(request: Request) -> Any:
        if request.method == "POST":
            return store.add_site(await _body(request)).public()
        return [s.public() for s in store.sites.values()]

    @admin
    async def site(request: Request) -> Any:
        s = site_of(request)
        if request.method == "PATCH":
            store.configure(s, await _body(request))
        return s.public()

    @admin
    async def products(request: Request) -> Any:
        s = site_of(request)
        if request.method == "GET":
            return [store.render_product(s, pid, True) for pid in s.products]
        body = await _body(request)
        specs = body["products"] if "products" in body else [body]
        return {"products": [store.add_product(s, dict(p)) for p in specs]}

    @admin
    async def inventory(request: Request) -> Any:
        s = site_of(request)
        return [{"sku": i.sku, "productId": i.product_id, "variantId": i.variant_id, "quantity": i.quantity,
                 "trackQuantity": i.track, "inStock": i.in_stock, "inventoryItemId": i.item_id,
                 "revision": str(i.revision)} for i in s.stock.values()]

    @admin
    async def history(request: Request) -> Any:
        return site_of(request).history

    @admin
    async def orders(request: Request) -> Any:
        s = site_of(request)
        if request.method == "POST":
            return {"order": store.add_order(s, await _body(request), events=events_on(request))}
        status = request.query_params.get("status")
        return [{"id": o["id"], "number": o["number"], "status": o["status"], "paymentStatus": o["paymentStatus"],
                 "fulfillmentStatus": o["fulfillmentStatus"], "createdDate": o["createdDate"],
                 "updatedDate": o["updatedDate"], "fulfillments": len(s.fulfillments.get(o["id"], []))}
                for o in s.orders.values() if not status or o["status"] == status]

    @admin
    async def bulk_orders(request: Request) -> Any:
        s = site_of(request)
        specs = (await _body(request)).get("orders") or []
        made = [store.add_order(s, dict(spec), events=events_on(request)) for spec in specs]
        return {"created": len(made), "ids": [o["id"] for o in made]}

    @admin
    async def generate(request: Request) -> Any:
        s = site_of(request)
        body = await _body(request)
        count = int(body.get("count", 100))
        skus = list(body.get("skus") or s.by_sku or ["SKU-1", "SKU-2", "SKU-3"])
        start = parse_time(body["start"]) if body.get("start") else now() - timedelta(seconds=count)
        spacing = float(body.get("spacingSeconds", 1.0))
        ids = []
        for i in range(count):
            spec = generated_spec(i, store.rng, skus, paid_ratio=float(body.get("paidRatio", 0.8)), start=start,
                                  spacing=spacing, tax_rate=str(body.get("taxRate", "0.21")))
            ids.append(store.add_order(s, spec, events=bool(body.get("events", False)))["id"])
        return {"created": count, "first": ids[:1], "last": ids[-1:]}

    @admin
    async def order(request: Request) -> Any:
        s = site_of(request)
        o = store.order(s, request.path_params["oid"])
        if request.method == "PATCH":  # overwrite fields as they are (also to make a bad order)
            o.update({k: v for k, v in (await _body(request)).items() if k not in ("id", "updatedDate")})
            store.touch(s, o)
            if events_on(request):
                store.emit(s, "wix.ecom.v1.order_updated", o["id"], "updatedEvent", {"currentEntity": o})
        return {"order": o, "fulfillments": s.fulfillments.get(o["id"], [])}

    @admin
    async def act(request: Request) -> Any:
        s, oid, action = site_of(request), request.path_params["oid"], request.path_params["action"]
        body = await _body(request)
        if action == "pay":
            return {"order": store.pay(s, oid)}
        if action == "refund":
            return {"order": store.refund(s, oid, body.get("amount"))}
        if action == "cancel":
            return {"order": store.cancel(s, oid, body)}
        raise WixApiError(404, f"unknown action {action}; use pay, refund or cancel", "NOT_FOUND")

    @admin
    async def fulfillments(request: Request) -> Any:
        s = site_of(request)
        return {oid: fs for oid, fs in s.fulfillments.items() if fs}

    @admin
    async def public_key(request: Request) -> Any:
        if request.query_params.get("format") == "pem":
            return PlainTextResponse(hooks.public_pem)
        return {"publicKey": hooks.public_pem}

    @admin
    async def webhooks(request: Request) -> Any:
        s = site_of(request)
        if request.method == "POST":
            body = await _body(request)
            s.webhook_url = str(body.get("url", ""))
        limit = int(request.query_params.get("limit", "1000"))
        return {"url": s.webhook_url, "deliveries": hooks.listing(s, limit)}

    @admin
    async def duplicate(request: Request) -> Any:
        return hooks.duplicate(site_of(request), request.path_params["did"])

    @admin
    async def send_event(request: Request) -> Any:
        s = site_of(request)
        body = await _body(request)
        o = store.order(s, str(body["orderId"]))
        event_type = str(body.get("eventType", "wix.ecom.v1.order_updated"))
        key, payload = ("updatedEvent", {"currentEntity": o}) if event_type.endswith("_updated") else (
            ("createdEvent", {"entity": o}) if event_type.endswith("_created") else ("actionEvent", {"order": o}))
        event = {"eventType": event_type, "entityFqdn": "wix.ecom.v1.order", "entityId": o["id"],
                 "slug": event_type.rsplit(".", 1)[-1].removeprefix("order_"), "bodyKey": key, "body": payload}
        if request.path_params["how"] not in ("send", "forge"):
            raise WixApiError(404, "use /webhooks/send or /webhooks/forge", "NOT_FOUND")
        if request.path_params["how"] == "forge":
            return hooks.public(hooks.forge(s, event))
        hooks.on_event(s, event)
        return hooks.listing(s, 1)[-1]

    p = "/sites/{site}"
    return [
        Route("/sites", sites, methods=["GET", "POST"]),
        Route(p, site, methods=["GET", "PATCH"]),
        Route(p + "/products", products, methods=["GET", "POST"]),
        Route(p + "/inventory", inventory, methods=["GET"]),
        Route(p + "/inventory/history", history, methods=["GET"]),
        Route(p + "/orders", orders, methods=["GET", "POST"]),
        Route(p + "/orders/bulk", bulk_orders, methods=["POST"]),
        Route(p + "/orders/generate", generate, methods=["POST"]),
        Route(p + "/orders/{oid}", order, methods=["GET", "PATCH"]),
        Route(p + "/orders/{oid}/{action}", act, methods=["POST"]),
        Route(p + "/fulfillments", fulfillments, methods=["GET"]),
        Route("/webhooks/public-key", public_key, methods=["GET"]),
        Route(p + "/webhooks", webhooks, methods=["GET", "POST"]),
        Route(p + "/webhooks/deliveries/{did}/duplicate", duplicate, methods=["POST"]),
        Route(p + "/webhooks/{how:str}", send_event, methods=["POST"]),
    ]
