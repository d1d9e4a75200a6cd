"""TradeGecko / QuickBooks Commerce API emulator (``orderbridge sandbox tradegecko``).

Reproduces the documented wire: bearer tokens (privileged, and OAuth with rotating refresh
tokens), bodies wrapped in the resource name, 201 on create / 204 on update, ``limit``/``page``
paging with ``X-Pagination`` and ``Link``, the fixed-window rate limit with ``X-Rate-Limit-*``,
422 ``{"errors": {...}}``, ``Idempotency-Key``. See docs/sandboxes/tradegecko.md.
"""

from __future__ import annotations

import json
import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from orderbridge.connectors.sandbox_kit import (
    ADMIN_PREFIX,
    FixedWindowLimiter,
    RateLimitExceeded,
    SandboxKit,
)
from orderbridge.connectors.tradegecko import sandbox_rules as rules
from orderbridge.connectors.tradegecko.sandbox_admin import admin_routes, create_account
from orderbridge.connectors.tradegecko.sandbox_store import (
    AccessToken,
    Account,
    ApiError,
    Store,
    api_error,
    pagination,
    parse_query,
    public,
    run_query,
)

DEFAULT_OPTIONS: dict[str, Any] = {
    "rate_limit": True,  # enforce the fixed-window limit
    "rate_calls": 300,  # calls per window per (application, account)
    "rate_period": 300,  # window length in seconds, aligned on the wall clock
    "retry_after_header": False,  # the real API sends none; on: also send Retry-After with 429
    "token_lifetime": 7200,  # seconds an OAuth access token lives
    "revoke_access_on_refresh": False,  # refreshing also revokes the access token issued with it
    "idempotency_ttl": 86400,  # seconds an Idempotency-Key is remembered
    "demo_account": True,  # create the account of DEMO_TOKEN at start-up
    "accounts": [],  # account specs to create at start-up (see POST /__sandbox__/accounts)
    "account_defaults": {},  # default account settings (see sandbox_store.ACCOUNT_DEFAULTS)
}
DEMO_TOKEN = "tradegecko-sandbox-token"
JSON_TYPE = "application/json; charset=utf-8"


class AlignedWindowLimiter(FixedWindowLimiter):
    """The API's window is fixed on the wall clock: every count resets at a multiple of the period."""

    def hit(self, key: str) -> tuple[int, float]:
        now = time.time()
        start = now - (now % self.period)
        window, count = self._windows.get(key, (start, 0))
        if window != start:
            count = 0
        reset = start + self.period - now
        if self.enabled and count >= self.calls:
            raise RateLimitExceeded(retry_after=max(reset, 0.01))
        self._windows[key] = (start, count + 1)
        return max(self.calls - count - 1, 0), reset


class PathNormalizer:
    """The API accepts ``/orders/``, ``/orders.json`` and ``/orders/1.json`` for the same resource."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(ADMIN_PREFIX):
            path = scope["path"]
            clean = path.rstrip("/").removesuffix(".json") or "/"
            if clean != path:
                scope = {**scope, "path": clean, "raw_path": clean.encode()}
        await self.app(scope, receive, send)


@dataclass
class Call:
    request: Request
    account: Account
    token: AccessToken
    body: Any = None


Reply = tuple[int, Any, dict[str, str]]
Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Resource:
    plural: str
    singular: str
    table: str  # the Account attribute holding its rows
    filters: frozenset[str]
    render: Callable[[Account, dict[str, Any]], dict[str, Any]] | None = None
    create: Callable[[Store, Account, dict[str, Any], str], dict[str, Any]] | None = None
    update: Callable[[Store, Account, dict[str, Any], dict[str, Any]], None] | None = None
    delete: Callable[[Store, Account, dict[str, Any]], None] | None = None
    update_returns_body: bool = False  # addresses answer 200 with the record since Aug 2020


def _render_plain(acct: Account, row: dict[str, Any]) -> dict[str, Any]:
    return public(row)


def _archive(table: str) -> Callable[[Store, Account, dict[str, Any]], None]:
    def delete(store: Store, acct: Account, row: dict[str, Any]) -> None:
        rules.archive(store, acct, row, table)

    return delete


def _no_app(fn: Callable[[Store, Account, dict[str, Any]], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def create(store: Store, acct: Account, data: dict[str, Any], app: str) -> dict[str, Any]:
        return fn(store, acct, data)

    return create


def _create_line_item(store: Store, acct: Account, data: dict[str, Any], app: str) -> dict[str, Any]:
    order = acct.orders.get(data.get("order_id"))
    if order is None:
        raise ApiError(422, {"errors": {"order_id": ["can't be blank"]}})
    before = len(order["order_line_item_ids"])
    rules.update_order(store, acct, order, {"order_line_items": [data]})
    return acct.line_items.rows[order["order_line_item_ids"][before]]


ORDER_FILTERS = frozenset({
    "status", "payment_status", "invoice_status", "packed_status", "fulfillment_status", "return_status",
    "returning_status", "shippability_status", "backordering_status", "order_number", "reference_number", "tags",
    "company_id", "contact_id", "billing_address_id", "shipping_address_id", "stock_location_id", "currency_id",
    "user_id", "assignee_id", "source_id",
})

RESOURCES = (
    Resource("locations", "location", "locations", frozenset({"status", "label"}),
             create=_no_app(rules.create_location), update=rules.update_location, delete=_archive("locations")),
    Resource("companies", "company", "companies",
             frozenset({"status", "company_type", "company_code", "email", "assignee_id"}),
             create=_no_app(rules.create_company), update=rules.update_company, delete=_archive("companies")),
    Resource("addresses", "address", "addresses", frozenset({"company_id", "status"}),
             create=_no_app(rules.create_address), update=rules.update_address, delete=_archive("addresses"),
             update_returns_body=True),
    Resource("variants", "variant", "variants",
             frozenset({"sku", "product_id", "status", "manage_stock", "upc", "supplier_code"}),
             render=rules.render_variant, create=_no_app(rules.create_variant), update=rules.update_variant,
             delete=_archive("variants")),
    Resource("stock_levels", "stock_level", "variants", frozenset({"status"}), render=rules.render_stock_level),
    Resource("orders", "order", "orders", ORDER_FILTERS, create=rules.create_order, update=rules.update_order,
             delete=rules.delete_order),
    Resource("order_line_items", "order_line_item", "line_items",
             frozenset({"order_id", "variant_id", "tax_type_id"}), create=_create_line_item),
    Resource("fulfillments", "fulfillment", "fulfillments",
             frozenset({"status", "order_id", "company_id", "shipping_address_id", "billing_address_id",
                        "stock_location_id"}),
             create=_no_app(rules.create_fulfillment), update=rules.update_fulfillment,
             delete=rules.delete_fulfillment),
    Resource("fulfillment_line_items", "fulfillment_line_item", "fulfillment_lines",
             frozenset({"fulfillment_id", "order_line_item_id"})),
    Resource("invoices", "invoice", "invoices", frozenset({"order_id", "status"})),
)


def create_app(options: dict[str, Any] | None = None) -> Starlette:
    opts = {**DEFAULT_OPTIONS, **(options or {})}
    store = Store(opts)
    limiter = AlignedWindowLimiter(
        calls=int(opts["rate_calls"]), period=float(opts["rate_period"]), enabled=bool(opts["rate_limit"])
    )
    kit = SandboxKit("tradegecko", rate_limit=limiter)
    if opts["demo_account"]:
        create_account(store, {"name": "Demo Store", "token": DEMO_TOKEN})
    for spec in opts["accounts"]:
        create_account(store, spec)

    def rate_headers(request: Request, reset_in: float, remaining: int) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(limiter.calls),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(round(time.time() + reset_in)),  # hit() measured it moments ago
        }

    def finish(request: Request, response: Response, started: float) -> Response:
        response.headers["X-Request-Id"] = str(uuid.uuid4())
        response.headers["X-Runtime"] = f"{time.perf_counter() - started:.6f}"
        if "rate_reset" in request.scope:
            response.headers.update(
                rate_headers(request, request.scope["rate_reset"], request.scope["rate_remaining"])
            )
        return response

    def rate_limited(request: Request, exc: RateLimitExceeded) -> Response:
        headers = {**rate_headers(request, exc.retry_after, 0), "X-Request-Id": str(uuid.uuid4())}
        if opts["retry_after_header"]:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        body = {"type": "Too Many Requests",
                "message": f"Rate limit of {limiter.calls} requests per {limiter.period:g} seconds exceeded"}
        return JSONResponse(body, status_code=429, headers=headers, media_type=JSON_TYPE)

    def rate_key(request: Request) -> str:
        return store.rate_key(_bearer(request))

    def api(handler: Handler, root: str = "") -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                info = _authenticate(store, request)
                acct = store.accounts[info.account_id]
                call = Call(request, acct, info)
                if request.method in ("POST", "PUT"):
                    call.body = _unwrap(await request.body(), root)
                key = request.headers.get("idempotency-key", "").strip()
                slot = (request.method, request.url.path, key)
                cached = acct.idempotency.get(slot) if key and request.method in ("POST", "PUT") else None
                if cached and cached[0] > store.clock.now():
                    response = Response(cached[2], cached[1], media_type=JSON_TYPE if cached[2] else None)
                    response.headers["Idempotent-Replayed"] = "true"
                    return finish(request, response, started)
                status, body, headers = handler(call)
                content = json.dumps(body).encode() if body is not None else b""
                if key and request.method in ("POST", "PUT") and 200 <= status < 300:
                    # Only operations that were performed are remembered: a rejected request may be
                    # corrected and sent again with the same key.
                    acct.idempotency[slot] = (store.clock.now() + float(opts["idempotency_ttl"]), status, content)
            except ApiError as exc:
                status, content, headers = exc.status, json.dumps(exc.body).encode(), exc.headers
            response = Response(content, status, headers=headers, media_type=JSON_TYPE if content else None)
            return finish(request, response, started)

        return endpoint

    routes: list[Route] = [
        Route("/oauth/token", _oauth_token(store), methods=["POST"]),
        Route("/oauth/authorize", _oauth_authorize(store), methods=["GET"]),
        Route("/accounts/current", api(lambda c: (200, {"account": c.account.render()}, {}))),
        Route("/users/current", api(lambda c: (200, {"user": _user(c.account)}, {}))),
        Route("/orders/{rid}/actions/{action}", api(_action(store)), methods=["POST"]),
    ]
    for res in RESOURCES:
        routes += _resource_routes(store, res, api)
    app = kit.app(routes, admin_routes(store), rate_limited_response=rate_limited, rate_key=rate_key)
    app.add_middleware(PathNormalizer)
    return app


# ------------------------------------------------------------------------------ request helpers


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _authenticate(store: Store, request: Request) -> AccessToken:
    info, problem = store.token_owner(_bearer(request))
    if info is None:
        challenge = f'Bearer realm="Doorkeeper", error="invalid_token", error_description="{problem}"'
        raise ApiError(401, {"type": "Unauthorized", "message": problem}, {"WWW-Authenticate": challenge})
    return info


def _unwrap(raw: bytes, root: str) -> dict[str, Any]:
    """Bodies are wrapped in the resource's singular name; an unwrapped object is accepted too."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise api_error(400, "The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise api_error(400, "The request body must be a JSON object")
    inner = data.get(root) if root else None
    return inner if isinstance(inner, dict) else data


def _user(acct: Account) -> dict[str, Any]:
    return {"id": acct.id, "account_id": acct.id, "first_name": "Sandbox", "last_name": "User",
            "email": f"owner@account{acct.id}.example", "status": "active"}


def _link_header(request: Request, q_page: int, pages: int) -> str:
    def url(page: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"] + [("page", str(page))]
        return str(request.url.replace(query=urlencode(params)))

    links = []
    if q_page > 1:
        links += [f'<{url(1)}>; rel="first"', f'<{url(min(q_page - 1, max(pages, 1)))}>; rel="prev"']
    if q_page < pages:
        links.append(f'<{url(q_page + 1)}>; rel="next"')
    links.append(f'<{url(max(pages, 1))}>; rel="last"')
    return ", ".join(links)


def _sideload(acct: Account, res: Resource, rows: list[dict[str, Any]], include: list[str]) -> dict[str, Any]:
    """``include=`` adds associated records as sibling top-level keys."""
    out: dict[str, list[dict[str, Any]]] = {}
    wanted = set(include)
    if res.plural == "fulfillments" and "fulfillment_line_items" in wanted:
        out["fulfillment_line_items"] = [
            public(acct.fulfillment_lines.rows[i]) for r in rows for i in r["fulfillment_line_item_ids"]
        ]
    if res.plural == "orders":
        if "order_line_items" in wanted:
            out["order_line_items"] = [public(acct.line_items.rows[i]) for r in rows for i in r["order_line_item_ids"]]
        if "fulfillments" in wanted:
            out["fulfillments"] = [public(acct.fulfillments.rows[i]) for r in rows for i in r["fulfillment_ids"]]
        ids = {r[f"{k}_address_id"] for r in rows for k in ("shipping", "billing") if f"{k}_address" in wanted}
        if ids:
            out["addresses"] = [public(acct.addresses.rows[i]) for i in sorted(ids)]
        if "company" in wanted:
            out["companies"] = [public(acct.companies.rows[i]) for i in sorted({r["company_id"] for r in rows})]
    return out


def _resource_routes(
    store: Store, res: Resource, api: Callable[[Handler, str], Callable[[Request], Awaitable[Response]]]
) -> list[Route]:
    render = res.render or _render_plain

    def index(c: Call) -> Reply:
        q = parse_query(c.request.query_params.multi_items(), res.filters)
        table = getattr(c.account, res.table)
        rows, total = run_query(table, q) if q.limit else ([], run_query(table, q)[1])
        info = pagination(total, q)
        body: dict[str, Any] = {}
        if res.plural != "orders":  # orders sideload on single GETs only
            body.update(_sideload(c.account, res, rows, q.include))
        body[res.plural] = [render(c.account, r) for r in rows]
        headers = {"X-Pagination": json.dumps(info), "Link": _link_header(c.request, q.page, info["total_pages"])}
        return 200, body, headers

    def show(c: Call) -> Reply:
        row = getattr(c.account, res.table).require(c.request.path_params["rid"])
        include = [p for p in c.request.query_params.get("include", "").split(",") if p]
        return 200, {**_sideload(c.account, res, [row], include), res.singular: render(c.account, row)}, {}

    def create(c: Call) -> Reply:
        assert res.create is not None
        row = res.create(store, c.account, c.body, c.token.app)
        return 201, {**_sideload(c.account, res, [row], ["fulfillment_line_items"]),
                     res.singular: render(c.account, row)}, {}

    def update(c: Call) -> Reply:
        assert res.update is not None
        row = getattr(c.account, res.table).require(c.request.path_params["rid"])
        res.update(store, c.account, row, c.body)
        if res.update_returns_body:
            return 200, {res.singular: render(c.account, row)}, {}
        return 204, None, {}

    def delete(c: Call) -> Reply:
        assert res.delete is not None
        res.delete(store, c.account, getattr(c.account, res.table).require(c.request.path_params["rid"]))
        return 204, None, {}

    base, item = f"/{res.plural}", f"/{res.plural}/{{rid}}"
    out = [Route(base, api(index, res.singular), methods=["GET"]),
           Route(item, api(show, res.singular), methods=["GET"])]
    if res.create:
        out.append(Route(base, api(create, res.singular), methods=["POST"]))
    if res.update:
        out.append(Route(item, api(update, res.singular), methods=["PUT"]))
    if res.delete:
        out.append(Route(item, api(delete, res.singular), methods=["DELETE"]))
    return out


def _action(store: Store) -> Handler:
    def act(c: Call) -> Reply:
        order = c.account.orders.require(c.request.path_params["rid"])
        status, body = rules.order_action(store, c.account, order, c.request.path_params["action"], c.body or {})
        return status, body, {}

    return act


# ----------------------------------------------------------------------------------- OAuth


async def _form_or_json(request: Request) -> dict[str, str]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace")))


def _oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _oauth_token(store: Store) -> Callable[[Request], Awaitable[Response]]:
    async def token(request: Request) -> Response:
        data = await _form_or_json(request)
        app = store.apps.get(data.get("client_id", ""))
        if app is None or not secrets.compare_digest(app.client_secret, data.get("client_secret", "")):
            return _oauth_error(401, "invalid_client", "Client authentication failed due to unknown client, "
                                "no client authentication included, or unsupported authentication method.")
        grant = data.get("grant_type")
        if grant == "refresh_token":
            old = store.refresh_tokens.get(data.get("refresh_token", ""))
            if old is None or old.used or old.app != app.client_id:
                return _oauth_error(400, "invalid_request",
                                    "The refresh token is invalid, was revoked, or was already used.")
            old.used = True  # each refresh token works once: the answer carries its successor
            if store.options["revoke_access_on_refresh"] and old.access in store.tokens:
                store.tokens[old.access].revoked = True
            return JSONResponse(store.issue_oauth(old.account_id, app.client_id))
        if grant == "authorization_code":
            found = store.codes.pop(data.get("code", ""), None)
            if found is None or found[1] != app.client_id or found[2] != data.get("redirect_uri", found[2]) \
                    or found[3] < store.clock.now():
                return _oauth_error(400, "invalid_grant", "The provided authorization grant is invalid, expired, "
                                    "revoked, or was issued to another client.")
            return JSONResponse(store.issue_oauth(found[0], app.client_id))
        return _oauth_error(400, "unsupported_grant_type",
                            "The authorization grant type is not supported by the authorization server.")

    return token


def _oauth_authorize(store: Store) -> Callable[[Request], Awaitable[Response]]:
    async def authorize(request: Request) -> Response:
        """The sandbox consents at once on behalf of ``account_id`` (default: the first account)."""
        params = request.query_params
        app = store.apps.get(params.get("client_id", ""))
        redirect = params.get("redirect_uri") or (app.redirect_uri if app else "")
        if app is None or params.get("response_type") != "code" or not redirect:
            return _oauth_error(400, "invalid_request", "unknown client_id, or response_type is not 'code'")
        try:
            acct = store.account(params.get("account_id") or (min(store.accounts) if store.accounts else 0))
        except ApiError:
            return _oauth_error(400, "invalid_request", "no such account")
        code = secrets.token_hex(12)
        store.codes[code] = (acct.id, app.client_id, redirect, store.clock.now() + 600)
        query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
        sep = "&" if "?" in redirect else "?"
        return RedirectResponse(f"{redirect}{sep}{urlencode(query)}", status_code=302)

    return authorize
