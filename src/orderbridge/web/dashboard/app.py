"""The dashboard as one Starlette app, mounted by ``orderbridge.web.app`` under /dashboard."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderbridge.engine.hub import Hub
from orderbridge.ledger.secrets import load_key
from orderbridge.web.dashboard import connections, inventory, keys, mappings, orders, overview, queue
from orderbridge.web.dashboard.auth import action, login_routes, page
from orderbridge.web.dashboard.render import render

SESSION_ENV = "ORDERBRIDGE_SESSION_MAX_AGE"
SECURE_ENV = "ORDERBRIDGE_COOKIE_SECURE"  # behind HTTPS: send the session cookie over HTTPS only
DEFAULT_SESSION_SECONDS = 8 * 3600
STATIC = Path(__file__).parent / "static"
HEADERS = [
    (b"content-security-policy", b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def session_secret() -> str:
    """Derived from the credentials key, so every process sharing the ledger accepts the same cookies."""
    return hmac.new(load_key(), b"orderbridge dashboard sessions", hashlib.sha256).hexdigest()


class SecurityHeaders:
    """No framing, no content sniffing, resources only from this origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def create_dashboard(hub: Hub, *, session_max_age: int | None = None, secret_key: str | None = None,
                     https_only: bool | None = None) -> Starlette:
    max_age = session_max_age or int(os.environ.get(SESSION_ENV) or DEFAULT_SESSION_SECONDS)
    if https_only is None:
        https_only = os.environ.get(SECURE_ENV, "").lower() in ("1", "true", "yes")
    login_form, login, logout = login_routes(hub)

    def get(path: str, handler: Any) -> Route:
        return Route(path, page(hub, handler), methods=["GET"])

    def post(path: str, handler: Any) -> Route:
        return Route(path, action(hub, handler), methods=["POST"])

    routes = [
        get("/", overview.overview),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        get("/connections", connections.list_connections),
        get("/connections/new", connections.new_connection),
        post("/connections/new", connections.save),
        get("/connections/{name}", connections.show_connection),
        get("/connections/{name}/edit", connections.edit_connection),
        post("/connections/{name}/edit", connections.save),
        post("/connections/{name}/test", connections.test),
        post("/connections/{name}/switch", connections.toggle),
        post("/connections/{name}/diagnose", connections.run_diagnosis),
        get("/orders", orders.list_orders),
        get("/orders/{oid}", orders.show_order),
        post("/orders/{oid}/retry", orders.retry),
        post("/orders/{oid}/cancel", orders.cancel),
        post("/orders/{oid}/repull", orders.repull),
        get("/errors", queue.error_queue),
        post("/errors/retry", queue.retry_group),
        get("/mappings", mappings.mappings_page),
        get("/mappings/aliases.csv", mappings.export_aliases),
        get("/mappings/ship-methods.csv", mappings.export_ship_methods),
        post("/mappings/alias", mappings.save_alias),
        post("/mappings/ship-method", mappings.save_ship_method),
        post("/mappings/aliases/import", mappings.import_aliases),
        post("/mappings/ship-methods/import", mappings.import_ship_methods),
        get("/inventory", inventory.inventory_page),
        get("/keys", keys.keys_page),
        post("/keys/new", keys.create),
        post("/keys/{kid:int}/revoke", keys.revoke),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 403: "Not allowed", 400: "Bad request", 405: "Not allowed"}
        return render("message.html", exc.status_code, title=titles.get(exc.status_code, "Error"), user=None,
                      base=str(request.scope.get("root_path", "")).rstrip("/"), csrf="", flashes=[], path="",
                      message=str(exc.detail), fix="Go back to the overview and try again.")

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SessionMiddleware, secret_key=secret_key or session_secret(), max_age=max_age,
                       session_cookie="orderbridge_session", same_site="lax", https_only=https_only),
        ],
        exception_handlers={HTTPException: http_error},
    )
