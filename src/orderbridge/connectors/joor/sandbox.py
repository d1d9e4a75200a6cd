"""An emulator of the JOOR v2 API as orderbridge uses it: order download with the export flag,
and bulk inventory.

- ``GET /v2/orders``: ``order_type``, ``export_status``, ``sync``, ``check``, ``date_start``/``date_end``
  (order-modified range, both or neither), ``customer_code``, ``customer_group_name``, ``start_from``,
  ``count``. With ``sync=1`` every order returned is marked exported.
- ``POST|PUT /v2/bulk-inventory``: ``overwrite``, ``dec_pending``; one ``inventory_log`` entry per
  item, ``pass`` or ``fail`` with the reason.
- ``Authorization: OAuth2 <Base64 token>`` on every call; 401 with JOOR's error envelope otherwise.

Admin routes under ``/__sandbox__/``: ``accounts`` (GET, POST), ``accounts/{acct}`` (GET),
``accounts/{acct}/catalog`` (GET, POST), ``accounts/{acct}/orders`` (GET: export flags; POST: one
order or a list), ``accounts/{acct}/orders/generate`` (POST ``{"count", "lines", "status"}``),
``accounts/{acct}/orders/{id}`` (GET: payload and flags), ``.../status`` (POST ``{"status"}``),
``.../modify`` (POST: fields to change), ``.../export`` (POST ``{"state": "none"}``: reset the flag),
``accounts/{acct}/inventory`` (GET), ``accounts/{acct}/inventory_log`` (GET), ``clock`` (POST
``{"advance_seconds"}``). Options: ``accounts`` (None: one demo account), ``seed``,
``first_order_id``, ``rate_limit`` (``{"calls", "period"}`` or False).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderbridge.connectors.joor.sandbox_store import (
    SUCCESS,
    Account,
    AdminError,
    JoorFault,
    JoorStore,
)
from orderbridge.connectors.sandbox_kit import FixedWindowLimiter, RateLimitExceeded, SandboxKit

DEFAULT_OPTIONS: dict[str, Any] = {
    "accounts": None,
    "seed": None,
    "first_order_id": None,
    "rate_limit": False,  # JOOR documents no v2 limit; {"calls": N, "period": S} turns one on
}


def error_body(status: int, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """JOOR's error envelope (the documented v4 shape; v2 error bodies are not documented)."""
    return {"errors": [{"status": str(status), "message": message, "details": details or {}}]}


def create_app(options: dict[str, Any] | None = None) -> Starlette:
    opts = {**DEFAULT_OPTIONS, **(options or {})}
    return JoorSandbox(opts).build()


class JoorSandbox:
    def __init__(self, options: dict[str, Any]) -> None:
        self.store = JoorStore(options)
        limit = options.get("rate_limit")
        limiter = FixedWindowLimiter(calls=int(limit["calls"]), period=float(limit["period"])) if isinstance(
            limit, dict) else None
        self.kit = SandboxKit("joor", rate_limit=limiter, seed=int(options.get("seed") or 0))

    # ------------------------------------------------------------------------------- API
    async def _api(self, request: Request, fn: Callable[[Account], Awaitable[dict[str, Any]]]) -> Response:
        try:
            async with self.kit.lock:
                acct = self.store.authenticate(request.headers.get("Authorization"))
                return JSONResponse(await fn(acct))
        except JoorFault as exc:
            return JSONResponse(error_body(exc.status, exc.message, exc.details), status_code=exc.status)

    async def orders(self, request: Request) -> Response:
        query = dict(request.query_params)

        async def run(acct: Account) -> dict[str, Any]:
            return self.store.list_orders(acct, query)

        return await self._api(request, run)

    async def bulk_inventory(self, request: Request) -> Response:
        query = dict(request.query_params)
        raw = await request.body()

        async def run(acct: Account) -> dict[str, Any]:
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                raise JoorFault(400, "the body is not valid JSON") from None
            return self.store.bulk_inventory(acct, body, query)

        return await self._api(request, run)

    def rate_limited(self, request: Request, exc: RateLimitExceeded) -> Response:
        return JSONResponse(error_body(429, "rate limit exceeded"), status_code=429,
                            headers={"Retry-After": str(max(1, round(exc.retry_after)))})

    # ----------------------------------------------------------------------------- admin
    def admin(self, fn: Callable[[Request, Any], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            body: Any = None
            if request.method in ("POST", "PUT"):
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return JSONResponse({"error": "the body is not JSON"}, status_code=400)
            try:
                async with self.kit.lock:
                    return JSONResponse(fn(request, body))
            except AdminError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)
            except JoorFault as exc:
                return JSONResponse({"error": exc.message}, status_code=400)

        return handler

    def build(self) -> Starlette:
        st = self.store

        def acct_of(request: Request) -> Account:
            return st.account(request.path_params["acct"])

        def accounts(request: Request, body: Any) -> Any:
            if request.method == "POST":
                return st.create_account(dict(body or {})).public()
            return [a.public() for a in st.accounts.values()]

        def account(request: Request, body: Any) -> Any:
            return acct_of(request).public()

        def catalog(request: Request, body: Any) -> Any:
            acct = acct_of(request)
            if request.method == "POST":
                return [st.add_style(acct, dict(e)) for e in (body if isinstance(body, list) else [body])]
            return list(acct.catalog.values())

        def orders(request: Request, body: Any) -> Any:
            acct = acct_of(request)
            if request.method == "POST":
                specs = body if isinstance(body, list) else [body]
                return [st.add_order(acct, dict(s)).render() for s in specs]
            wanted = request.query_params.get("export_state")
            return [o.state() for o in sorted(acct.orders.values(), key=lambda o: o.order_id)
                    if not wanted or o.export_state == wanted]

        def generate(request: Request, body: Any) -> Any:
            acct = acct_of(request)
            spec = dict(body or {})
            count = int(spec.pop("count", 1))
            if not 0 < count <= 10_000:
                raise AdminError("count must be between 1 and 10000")
            made = [st.add_order(acct, dict(spec)) for _ in range(count)]
            return {"order_ids": [o.order_id for o in made], "lines": sum(o.state()["lines"] for o in made)}

        def order(request: Request, body: Any) -> Any:
            found = st.order(acct_of(request), request.path_params["oid"])
            return {**found.state(), "payload": found.render()}

        def status(request: Request, body: Any) -> Any:
            found = st.order(acct_of(request), request.path_params["oid"])
            new = str((body or {}).get("status", ""))
            if new not in ("Approved", "Pending", "Shipped", "Cancelled", "Notes"):
                raise AdminError("status must be Approved, Pending, Shipped, Cancelled or Notes")
            found.status = new
            st.touch(found)
            return found.state()

        def modify(request: Request, body: Any) -> Any:
            found = st.order(acct_of(request), request.path_params["oid"])
            for key, value in dict(body or {}).items():
                if key in ("order_id", "status"):
                    raise AdminError(f"{key} cannot be modified here")
                found.data[key] = value
            st.touch(found)
            return found.state()

        def export(request: Request, body: Any) -> Any:
            found = st.order(acct_of(request), request.path_params["oid"])
            state = str((body or {}).get("state", "none"))
            if state not in ("none", "failed", SUCCESS):
                raise AdminError("state must be none, failed or success")
            found.export_state = state
            found.exported_at = st.now() if state == SUCCESS else None
            return found.state()

        def inventory(request: Request, body: Any) -> Any:
            acct = acct_of(request)
            upc = request.query_params.get("upc")
            return [p for p in acct.inventory.values() if not upc or p["upc"] == upc]

        def inventory_log(request: Request, body: Any) -> Any:
            return acct_of(request).inventory_log

        def clock(request: Request, body: Any) -> Any:
            if request.method == "POST":
                st.clock_offset += timedelta(seconds=float((body or {}).get("advance_seconds", 0)))
            return {"now": st.now().isoformat()}

        a = self.admin
        admin_routes = [
            Route("/accounts", a(accounts), methods=["GET", "POST"]),
            Route("/accounts/{acct}", a(account), methods=["GET"]),
            Route("/accounts/{acct}/catalog", a(catalog), methods=["GET", "POST"]),
            Route("/accounts/{acct}/orders", a(orders), methods=["GET", "POST"]),
            Route("/accounts/{acct}/orders/generate", a(generate), methods=["POST"]),
            Route("/accounts/{acct}/orders/{oid}", a(order), methods=["GET"]),
            Route("/accounts/{acct}/orders/{oid}/status", a(status), methods=["POST"]),
            Route("/accounts/{acct}/orders/{oid}/modify", a(modify), methods=["POST"]),
            Route("/accounts/{acct}/orders/{oid}/export", a(export), methods=["POST"]),
            Route("/accounts/{acct}/inventory", a(inventory), methods=["GET"]),
            Route("/accounts/{acct}/inventory_log", a(inventory_log), methods=["GET"]),
            Route("/clock", a(clock), methods=["GET", "POST"]),
        ]
        api_routes = [
            Route("/v2/orders", self.orders, methods=["GET"]),
            Route("/v2/orders/", self.orders, methods=["GET"]),
            Route("/v2/bulk-inventory", self.bulk_inventory, methods=["POST", "PUT"]),
            Route("/v2/bulk-inventory/", self.bulk_inventory, methods=["POST", "PUT"]),
        ]
        return self.kit.app(api_routes, admin_routes, rate_limited_response=self.rate_limited)
