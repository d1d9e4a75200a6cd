"""Holded Invoice API v1 emulator (``orderbridge sandbox holded``).

Serves the API under ``/api/invoicing/v1`` with ``key`` header auth, several accounts (API keys)
each with its own data, Holded's envelopes and quirks (business errors as HTTP 200 with
``status: 0``, an HTML 404 page on HTTP 200 for unknown routes, the customFields create quirk),
a per-key rate limit, and an admin surface under ``/__sandbox__/``. See docs/sandboxes/holded.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from orderbridge.connectors.holded import sandbox_docs as docs
from orderbridge.connectors.holded.sandbox_admin import admin_routes
from orderbridge.connectors.holded.sandbox_store import (
    DOC_TYPES,
    SERIES_PATH,
    TAXES,
    Account,
    HoldedFault,
    Missing,
    Quirks,
)
from orderbridge.connectors.sandbox_kit import FixedWindowLimiter, RateLimitExceeded, SandboxKit

API_PREFIX = "/api/invoicing/v1"
DEFAULT_KEY = "holded-sandbox-key"
HTML_404 = ("<!DOCTYPE html><html lang=\"en\"><head><title>Holded - Page not found</title></head>"
            "<body><h1>404</h1><p>The page you are looking for does not exist.</p></body></html>")

Handler = Callable[[Account, Request, Any], Awaitable[Any]]


class HoldedSandbox:
    """Accounts by API key, the quirks in force and one-off refusals queued by tests."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.quirks = Quirks()
        self.quirks.update({k: v for k, v in options.items() if k in Quirks.__dataclass_fields__})
        self.accounts: dict[str, Account] = {}
        self.refusals: list[dict[str, Any]] = []
        for spec in options.get("accounts") or [{"key": DEFAULT_KEY, "name": "Demo company"}]:
            self.add_account(str(spec["key"]), str(spec.get("name") or spec["key"]))

    def add_account(self, key: str, name: str) -> Account:
        if key in self.accounts:
            return self.accounts[key]
        acc = Account(key=key, name=name, quirks=self.quirks)
        acc.bootstrap()
        self.accounts[key] = acc
        return acc

    def account_for(self, request: Request) -> Account | None:
        key = request.headers.get("key") or request.headers.get("x-api-key") or ""
        return self.accounts.get(key)

    def queued_refusal(self, request: Request) -> dict[str, Any] | None:
        target = f"{request.method} {request.url.path}"
        for refusal in self.refusals:
            if refusal["match"] in target:
                refusal["count"] -= 1
                if refusal["count"] <= 0:
                    self.refusals.remove(refusal)
                return refusal
        return None

    def refuse(self, info: str, http_status: int) -> Response:
        code = 200 if self.quirks.errors_on_http_200 else http_status
        return JSONResponse({"status": 0, "info": info}, status_code=code)


def create_app(options: dict[str, Any] | None = None) -> Starlette:
    opts = dict(options or {})
    state = HoldedSandbox(opts)
    limiter = FixedWindowLimiter(calls=int(opts.get("rate_limit_calls", 100)),
                                 period=float(opts.get("rate_limit_period", 60.0)),
                                 enabled=bool(opts.get("rate_limit_enabled", True)))
    kit = SandboxKit("holded", rate_limit=limiter)

    def rate_key(request: Request) -> str:
        acc = state.account_for(request)
        request.scope["sandbox_tag"] = acc.name if acc else ""
        return acc.key if acc else "anonymous"

    def rate_limited(request: Request, exc: RateLimitExceeded) -> Response:
        return JSONResponse({"status": 0, "info": "Too many requests"}, status_code=429,
                            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))})

    def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            acc = state.account_for(request)
            if acc is None:
                status = 200 if state.quirks.auth_on_http_200 else 401
                return JSONResponse({"status": 0, "info": "Invalid API key"}, status_code=status)
            refusal = state.queued_refusal(request)
            if refusal:
                return state.refuse(refusal["info"], int(refusal.get("http_status", 400)))
            body: Any = None
            if request.method in ("POST", "PUT"):
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw.strip() else {}
                except json.JSONDecodeError:
                    return state.refuse("Invalid JSON body", 400)
                if not isinstance(body, dict):
                    return state.refuse("Invalid JSON body", 400)
            try:
                result = await handler(acc, request, body)
            except HoldedFault as exc:
                return state.refuse(exc.info, exc.http_status)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint

    def doc_type(request: Request) -> str:
        value = str(request.path_params.get("doc_type", "salesorder"))
        if value not in DOC_TYPES:
            raise HoldedFault("Invalid docType")
        return value

    def created(payload: dict[str, Any]) -> Response:
        return JSONResponse(payload, status_code=201)

    # ------------------------------------------------------------------------- contacts
    async def list_contacts(acc: Account, request: Request, _: Any) -> Any:
        q = request.query_params
        wanted = [v for k in ("customId[]", "customId") for raw in q.getlist(k) for v in raw.split(",") if v]
        if wanted:
            ids = [cid for w in dict.fromkeys(wanted) for cid in acc.contacts_by_custom_id.get(w, [])]
        else:
            ids = list(acc.contacts)
        rows = [acc.contacts[i] for i in ids]
        for key in ("phone", "mobile"):
            if q.get(key):
                rows = [c for c in rows if c[key] == q[key]]
        return docs.page_of(acc, rows, q)

    async def create_contact(acc: Account, request: Request, body: Any) -> Any:
        return created({"status": 1, "info": "Created", "id": acc.add_contact(body)})

    async def get_contact(acc: Account, request: Request, _: Any) -> Any:
        contact = acc.contacts.get(request.path_params["id"])
        if contact is None:
            raise Missing()
        return contact

    async def update_contact(acc: Account, request: Request, body: Any) -> Any:
        acc.update_contact(request.path_params["id"], body)
        return {"status": 1, "info": "Updated", "id": request.path_params["id"]}

    async def delete_contact(acc: Account, request: Request, _: Any) -> Any:
        acc.delete_contact(request.path_params["id"])
        return {"status": 1, "info": "Successfully deleted", "id": request.path_params["id"]}

    # ------------------------------------------------------------------------- products
    async def list_products(acc: Account, request: Request, _: Any) -> Any:
        return docs.page_of(acc, [acc.product_wire(p) for p in acc.products], request.query_params)

    async def create_product(acc: Account, request: Request, body: Any) -> Any:
        return created({"status": 1, "info": "Created", "id": acc.add_product(body)})

    async def get_product(acc: Account, request: Request, _: Any) -> Any:
        if request.path_params["id"] not in acc.products:
            raise Missing()
        return acc.product_wire(request.path_params["id"])

    async def update_product(acc: Account, request: Request, body: Any) -> Any:
        acc.update_product(request.path_params["id"], body)
        return {"status": 1, "info": "Updated", "id": request.path_params["id"]}

    async def delete_product(acc: Account, request: Request, _: Any) -> Any:
        acc.delete_product(request.path_params["id"])
        return {"status": 1, "info": "Successfully deleted", "id": request.path_params["id"]}

    async def product_stock(acc: Account, request: Request, body: Any) -> Any:
        pid = request.path_params["id"]
        if pid not in acc.products:
            raise Missing()
        acc.apply_stock_body(pid, body)  # a wrongly shaped body is silently ignored, like Holded
        return {"status": 1, "info": "Updated", "id": pid}

    # ------------------------------------------------------------------------ warehouses
    async def list_warehouses(acc: Account, request: Request, _: Any) -> Any:
        return docs.page_of(acc, list(acc.warehouses.values()), request.query_params)

    async def create_warehouse(acc: Account, request: Request, body: Any) -> Any:
        return created({"status": 1, "info": "Created", "id": acc.add_warehouse(body)})

    async def get_warehouse(acc: Account, request: Request, _: Any) -> Any:
        wh = acc.warehouses.get(request.path_params["id"])
        if wh is None:
            raise Missing()
        return wh

    async def warehouse_stock(acc: Account, request: Request, _: Any) -> Any:
        return acc.warehouse_stock(request.path_params["id"])

    # ------------------------------------------------------- series, channels, money, taxes
    def series_type(request: Request) -> str:
        stype = SERIES_PATH.get(str(request.path_params["type"]).lower())
        if stype is None:
            raise HoldedFault("Invalid type")
        return stype

    async def list_series(acc: Account, request: Request, _: Any) -> Any:
        stype = series_type(request)
        return [s for s in acc.series.values() if s["type"] == stype]

    async def create_series(acc: Account, request: Request, body: Any) -> Any:
        return created({"status": 1, "msg": "Created", "id": acc.add_series(series_type(request), body)})

    async def update_series(acc: Account, request: Request, body: Any) -> Any:
        series = acc.series.get(request.path_params["id"])
        if series is None or series["type"] != series_type(request):
            raise Missing()
        for key in ("name", "format"):
            if isinstance(body.get(key), str):
                series[key] = body[key]
        if "last" in body:
            series["last"] = int(body["last"])
        return {"status": 1, "info": "Updated", "id": series["id"]}

    async def delete_series(acc: Account, request: Request, _: Any) -> Any:
        if acc.series.pop(request.path_params["id"], None) is None:
            raise Missing()
        return {"status": 1, "info": "Successfully deleted", "id": request.path_params["id"]}

    async def list_channels(acc: Account, request: Request, _: Any) -> Any:
        return list(acc.channels.values())

    async def create_channel(acc: Account, request: Request, body: Any) -> Any:
        return created({"status": 1, "info": "Created", "id": acc.add_channel(body)})

    async def get_channel(acc: Account, request: Request, _: Any) -> Any:
        channel = acc.channels.get(request.path_params["id"])
        if channel is None:
            raise Missing()
        return channel

    async def list_taxes(acc: Account, request: Request, _: Any) -> Any:
        return TAXES

    async def list_treasury(acc: Account, request: Request, _: Any) -> Any:
        return list(acc.treasuries.values())

    async def list_payment_methods(acc: Account, request: Request, _: Any) -> Any:
        return list(acc.payment_methods.values())

    async def list_payments(acc: Account, request: Request, _: Any) -> Any:
        return docs.page_of(acc, list(acc.payments.values()), request.query_params)

    # ------------------------------------------------------------------------ documents
    async def list_documents(acc: Account, request: Request, _: Any) -> Any:
        return docs.list_documents(acc, doc_type(request), request.query_params)

    async def create_document(acc: Account, request: Request, body: Any) -> Any:
        doc = docs.create_document(acc, doc_type(request), body)
        return created({"status": 1, "id": doc.id, "invoiceNum": doc.doc_number, "contactId": doc.contact_id})

    def the_doc(acc: Account, request: Request) -> docs.Document:
        return docs.get_document(acc, doc_type(request), request.path_params["id"])

    async def get_document(acc: Account, request: Request, _: Any) -> Any:
        return the_doc(acc, request).wire()

    async def update_document(acc: Account, request: Request, body: Any) -> Any:
        doc = the_doc(acc, request)
        docs.update_document(acc, doc, body)
        return {"status": 1, "info": "Updated", "id": doc.id}

    async def delete_document(acc: Account, request: Request, _: Any) -> Any:
        doc = the_doc(acc, request)
        docs.delete_document(acc, doc)
        return {"status": 1, "info": "Successfully deleted", "id": doc.id}

    async def pay_document(acc: Account, request: Request, body: Any) -> Any:
        return docs.pay(acc, the_doc(acc, request), body)

    async def ship_all(acc: Account, request: Request, _: Any) -> Any:
        docs.ship_all(acc, the_doc(acc, request))
        return {"status": 1, "info": "Items Shipped"}

    async def ship_by_lines(acc: Account, request: Request, body: Any) -> Any:
        docs.ship_by_lines(acc, the_doc(acc, request), body.get("lines"))
        return {"status": 1, "info": "Items Shipped"}

    async def shipped_items(acc: Account, request: Request, _: Any) -> Any:
        return docs.shipped_items(the_doc(acc, request))

    async def update_tracking(acc: Account, request: Request, body: Any) -> Any:
        docs.update_tracking(the_doc(acc, request), body)
        return {"status": 1, "data": "Updated"}

    async def not_found(request: Request) -> Response:
        if state.quirks.html_404:
            return HTMLResponse(HTML_404, status_code=200)
        return HTMLResponse(HTML_404, status_code=404)

    def r(path: str, handler: Handler, method: str) -> Route:
        return Route(path, api(handler), methods=[method])

    routes: list[BaseRoute] = [
        r("/contacts", list_contacts, "GET"), r("/contacts", create_contact, "POST"),
        r("/contacts/{id}", get_contact, "GET"), r("/contacts/{id}", update_contact, "PUT"),
        r("/contacts/{id}", delete_contact, "DELETE"),
        r("/products", list_products, "GET"), r("/products", create_product, "POST"),
        r("/products/{id}", get_product, "GET"), r("/products/{id}", update_product, "PUT"),
        r("/products/{id}", delete_product, "DELETE"), r("/products/{id}/stock", product_stock, "PUT"),
        r("/warehouses", list_warehouses, "GET"), r("/warehouses", create_warehouse, "POST"),
        r("/warehouses/{id}", get_warehouse, "GET"), r("/warehouses/{id}/stock", warehouse_stock, "GET"),
        r("/numberingseries/{type}", list_series, "GET"), r("/numberingseries/{type}", create_series, "POST"),
        r("/numberingseries/{type}/{id}", update_series, "PUT"),
        r("/numberingseries/{type}/{id}", delete_series, "DELETE"),
        r("/saleschannels", list_channels, "GET"), r("/saleschannels", create_channel, "POST"),
        r("/saleschannels/{id}", get_channel, "GET"),
        r("/taxes", list_taxes, "GET"), r("/treasury", list_treasury, "GET"),
        r("/paymentmethods", list_payment_methods, "GET"), r("/payments", list_payments, "GET"),
        r("/documents/salesorder/{id}/shipall", ship_all, "POST"),
        r("/documents/salesorder/{id}/shipbylines", ship_by_lines, "POST"),
        r("/documents/{doc_type}", list_documents, "GET"), r("/documents/{doc_type}", create_document, "POST"),
        r("/documents/{doc_type}/{id}", get_document, "GET"),
        r("/documents/{doc_type}/{id}", update_document, "PUT"),
        r("/documents/{doc_type}/{id}", delete_document, "DELETE"),
        r("/documents/{doc_type}/{id}/pay", pay_document, "POST"),
        r("/documents/{doc_type}/{id}/shippeditems", shipped_items, "GET"),
        r("/documents/{doc_type}/{id}/updatetracking", update_tracking, "POST"),
    ]
    everything = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return kit.app(
        [Mount(API_PREFIX, routes=[*routes, Route("/{rest:path}", not_found, methods=everything)]),
         Route("/{rest:path}", not_found, methods=everything)],
        admin_routes(state),
        rate_limited_response=rate_limited,
        rate_key=rate_key,
    )
