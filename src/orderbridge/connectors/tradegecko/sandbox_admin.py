"""Admin surface of the TradeGecko sandbox (under ``/__sandbox__/``; no real API has these paths).

Create accounts, applications and tokens (and expire them), seed locations, variants, stock and
companies, act as the warehouse (ship an order in packages), and inspect what the API holds.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderbridge.connectors.tradegecko import sandbox_rules as rules
from orderbridge.connectors.tradegecko.sandbox_store import (
    ACCOUNT_DEFAULTS,
    Account,
    ApiError,
    App,
    Store,
    dec,
    fmt,
    public,
)

AdminHandler = Callable[[Request, Any], Any]


def create_account(store: Store, spec: dict[str, Any]) -> dict[str, Any]:
    """Create an account with its locations and tokens; returns the account and its credentials."""
    settings = {**ACCOUNT_DEFAULTS, **store.options.get("account_defaults", {}), **spec.get("settings", {})}
    unknown = set(settings) - set(ACCOUNT_DEFAULTS)
    if unknown:
        raise ApiError(400, {"error": f"unknown account settings {sorted(unknown)}"})
    acct = Account(id=store.next_id("account"), name=str(spec.get("name") or "Sandbox account"), settings=settings,
                   created_at=store.now())
    store.accounts[acct.id] = acct
    for loc in spec.get("locations") or [{"label": "Main Warehouse"}]:
        rules.create_location(store, acct, {"address1": "1 Warehouse Way", "country": "US", **loc})
    out: dict[str, Any] = {"account": acct.render()}
    out["privileged_token"] = store.issue_privileged(acct.id, str(spec.get("token") or ""))
    oauth = spec.get("oauth")
    if oauth is not None:
        app = _app(store, oauth)
        out["oauth"] = {"client_id": app.client_id, "client_secret": app.client_secret,
                        **store.issue_oauth(acct.id, app.client_id, oauth.get("expires_in"))}
    return out


def _app(store: Store, data: dict[str, Any]) -> App:
    client_id = str(data.get("client_id") or "app_" + secrets.token_hex(8))
    app = store.apps.get(client_id)
    if app is None:
        app = App(client_id, str(data.get("client_secret") or secrets.token_hex(16)),
                  str(data.get("redirect_uri") or "urn:ietf:wg:oauth:2.0:oob"))
        store.apps[client_id] = app
    return app


def _as_list(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(i, dict) for i in items):
        raise ApiError(400, {"error": "send an object or a list of objects"})
    return items


def _variant_for(acct: Account, item: dict[str, Any]) -> dict[str, Any]:
    if item.get("variant_id") is not None:
        return acct.variants.require(item["variant_id"])
    found = [v for v in acct.variants.where("sku", item.get("sku")) if v["status"] == "active"]
    if len(found) != 1:
        raise ApiError(400, {"error": f"sku {item.get('sku')!r} matches {len(found)} active variants"})
    return found[0]


def _location_for(acct: Account, item: dict[str, Any]) -> int:
    if item.get("location_id") is not None:
        return int(acct.locations.require(item["location_id"])["id"])
    if item.get("location"):
        found = acct.locations.where("label", item["location"])
        if not found:
            raise ApiError(400, {"error": f"no location labelled {item['location']!r}"})
        return int(found[0]["id"])
    return acct.primary_location_id


def stock_rows(acct: Account, sku: str | None = None) -> list[dict[str, Any]]:
    variants = acct.variants.where("sku", sku) if sku else acct.variants.rows.values()
    out = []
    for v in variants:
        for lid, (on_hand, committed) in sorted(v["_stock"].items()):
            out.append({"variant_id": v["id"], "sku": v["sku"], "location_id": lid, "stock_on_hand": fmt(on_hand),
                        "committed": fmt(committed), "available": fmt(on_hand - committed)})
    return out


def full_order(acct: Account, order: dict[str, Any]) -> dict[str, Any]:
    return {**public(order), "order_line_items": [public(ln) for ln in rules.order_lines(acct, order)]}


def full_fulfillment(acct: Account, ful: dict[str, Any]) -> dict[str, Any]:
    return {**public(ful), "fulfillment_line_items": [public(x) for x in rules.fulfillment_lines(acct, ful)]}


def admin_routes(store: Store) -> list[Route]:
    def route(path: str, fn: AdminHandler, method: str = "GET") -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                raw = await request.body()
                body = json.loads(raw) if raw.strip() else {}
                return JSONResponse(fn(request, body))
            except ApiError as exc:
                return JSONResponse(exc.body, status_code=exc.status)
            except ValueError as exc:
                return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)

        return Route(path, endpoint, methods=[method])

    def acct(request: Request) -> Account:
        return store.account(request.path_params["aid"])

    def accounts(request: Request, body: Any) -> Any:
        return [{**a.render(), "settings": a.settings, "orders": len(a.orders), "variants": len(a.variants)}
                for a in store.accounts.values()]

    def new_account(request: Request, body: Any) -> Any:
        return create_account(store, body)

    def new_token(request: Request, body: Any) -> Any:
        a = acct(request)
        if body.get("kind", "privileged") == "oauth":
            app = _app(store, body)
            return {"client_id": app.client_id, "client_secret": app.client_secret,
                    **store.issue_oauth(a.id, app.client_id, body.get("expires_in"))}
        return {"access_token": store.issue_privileged(a.id, str(body.get("token") or ""), str(body.get("app", "")))}

    def expire(request: Request, body: Any) -> Any:
        done = []
        if body.get("access_token") in store.tokens:
            store.tokens[body["access_token"]].expires_at = store.clock.now() - 1
            done.append("access_token")
        if body.get("refresh_token") in store.refresh_tokens:
            store.refresh_tokens[body["refresh_token"]].used = True
            done.append("refresh_token")
        if not done:
            raise ApiError(404, {"error": "no such token"})
        return {"expired": done}

    def new_app(request: Request, body: Any) -> Any:
        app = _app(store, body)
        return {"client_id": app.client_id, "client_secret": app.client_secret, "redirect_uri": app.redirect_uri}

    def new_code(request: Request, body: Any) -> Any:
        a, app = acct(request), store.apps.get(body.get("client_id", ""))
        if app is None:
            raise ApiError(404, {"error": "no such application"})
        code = secrets.token_hex(12)
        store.codes[code] = (a.id, app.client_id, str(body.get("redirect_uri") or app.redirect_uri),
                             store.clock.now() + 600)
        return {"code": code}

    def settings(request: Request, body: Any) -> Any:
        a = acct(request)
        unknown = set(body) - set(ACCOUNT_DEFAULTS)
        if unknown:
            raise ApiError(400, {"error": f"unknown account settings {sorted(unknown)}"})
        a.settings.update(body)
        return a.settings

    def locations(request: Request, body: Any) -> Any:
        a = acct(request)
        return [public(rules.create_location(store, a, {"address1": "1 Warehouse Way", "country": "US", **item}))
                for item in _as_list(body)]

    def variants(request: Request, body: Any) -> Any:
        """Seed variants; ``stock`` maps location ids (or labels) to units on hand."""
        a = acct(request)
        out = []
        for item in _as_list(body):
            stock = item.get("stock") or {}
            row = rules.create_variant(store, a, {k: v for k, v in item.items() if k not in ("stock", "status")})
            for where, qty in stock.items():
                key = {"location_id": where} if str(where).isdigit() else {"location": where}
                rules.stock_cell(row, _location_for(a, key))[0] = dec(qty) or Decimal(0)
            if item.get("status") == "archived":
                rules.archive(store, a, row, "variants")
            out.append(rules.render_variant(a, row))
        return out

    def set_stock(request: Request, body: Any) -> Any:
        """Set units on hand: ``[{"sku" | "variant_id", "location_id" | "location", "stock_on_hand"}]``."""
        a = acct(request)
        for item in _as_list(body):
            qty = dec(item.get("stock_on_hand"))
            if qty is None:
                raise ApiError(400, {"error": "stock_on_hand must be a number"})
            rules.stock_cell(_variant_for(a, item), _location_for(a, item))[0] = qty
        return stock_rows(a)

    def get_stock(request: Request, body: Any) -> Any:
        return stock_rows(acct(request), request.query_params.get("sku"))

    def companies(request: Request, body: Any) -> Any:
        a = acct(request)
        out = []
        for item in _as_list(body):
            addresses = item.get("addresses") or []
            company = rules.create_company(store, a, {k: v for k, v in item.items() if k != "addresses"})
            for addr in addresses:
                rules.create_address(store, a, {**addr, "company_id": company["id"]})
            out.append(public(company))
        return out

    def list_companies(request: Request, body: Any) -> Any:
        return [public(c) for c in acct(request).companies.rows.values()]

    def list_addresses(request: Request, body: Any) -> Any:
        return [public(x) for x in acct(request).addresses.rows.values()]

    def orders(request: Request, body: Any) -> Any:
        a, params = acct(request), request.query_params
        ref = params.get("reference_number")
        status = params.get("status")
        if ref is not None:
            rows = [o for o in a.orders.where("reference_number", ref) if not status or o["status"] == status]
        elif status:
            rows = a.orders.where("status", status)
        else:
            rows = list(a.orders.rows.values())
        return [full_order(a, o) for o in rows]

    def order_counts(request: Request, body: Any) -> Any:
        a = acct(request)
        refs = Counter(o["reference_number"] for o in a.orders.rows.values() if o["status"] != "deleted")
        return {"total": sum(refs.values()), "by_reference_number": dict(refs),
                "duplicates": {k: n for k, n in refs.items() if n > 1},
                "companies": len(a.companies), "addresses": len(a.addresses)}

    def ship(request: Request, body: Any) -> Any:
        """Act as the warehouse: ship one order in ``packages`` (each becomes a fulfillment)."""
        a = acct(request)
        if body.get("order_id") is not None:
            order = a.orders.require(body["order_id"])
        else:
            found = [o for o in a.orders.where("reference_number", body.get("reference_number"))
                     if o["status"] not in ("deleted", "void")]
            if not found:
                raise ApiError(404, {"error": f"no order with reference_number {body.get('reference_number')!r}"})
            order = found[-1]
        packages = body.get("packages") or [{}]
        made = rules.warehouse_ship(store, a, order, _as_list(packages), bool(body.get("finalize", True)))
        return {"order": full_order(a, order), "fulfillments": [full_fulfillment(a, f) for f in made]}

    def fulfillments(request: Request, body: Any) -> Any:
        a = acct(request)
        return [full_fulfillment(a, f) for f in a.fulfillments.rows.values()]

    def clock(request: Request, body: Any) -> Any:
        if request.method == "POST":
            store.clock.offset += float(body.get("advance_seconds", 0))
        return {"now": store.now(), "offset_seconds": store.clock.offset}

    a = "/accounts/{aid}"
    return [
        route("/accounts", accounts), route("/accounts", new_account, "POST"),
        route(f"{a}/tokens", new_token, "POST"), route("/tokens/expire", expire, "POST"),
        route("/apps", new_app, "POST"), route(f"{a}/authorization_codes", new_code, "POST"),
        route(f"{a}/settings", settings, "POST"), route(f"{a}/locations", locations, "POST"),
        route(f"{a}/variants", variants, "POST"), route(f"{a}/stock", set_stock, "POST"),
        route(f"{a}/stock", get_stock), route(f"{a}/companies", companies, "POST"),
        route(f"{a}/companies", list_companies), route(f"{a}/addresses", list_addresses),
        route(f"{a}/orders", orders), route(f"{a}/orders/counts", order_counts), route(f"{a}/ship", ship, "POST"),
        route(f"{a}/fulfillments", fulfillments), route("/clock", clock), route("/clock", clock, "POST"),
    ]
