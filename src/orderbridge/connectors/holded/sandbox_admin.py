"""Admin surface of the Holded sandbox (under ``/__sandbox__/``): accounts, seeding, acting as the
user ("Send units"), inspection of documents, contacts, stock and its movements, switchable quirks
and queued ``status: 0`` refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from orderbridge.connectors.holded import sandbox_docs as docs
from orderbridge.connectors.holded.sandbox_store import DOC_TYPES, SERIES_PATH, Account, HoldedFault

if TYPE_CHECKING:
    from orderbridge.connectors.holded.sandbox import HoldedSandbox

AdminHandler = Callable[[Request], Awaitable[Any]]


def _seed(acc: Account, body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"warehouses": {}, "products": {}, "series": {}, "channels": {}, "contacts": {}}
    for wh in body.get("warehouses") or []:
        out["warehouses"][wh["name"]] = acc.add_warehouse(wh)
    by_name = {w["name"]: wid for wid, w in acc.warehouses.items()}
    for series in body.get("series") or []:
        stype = SERIES_PATH.get(str(series.get("type", "")).lower())
        if stype is None:
            raise HoldedFault(f"unknown series type {series.get('type')!r}")
        out["series"][series.get("name") or stype] = acc.add_series(stype, series)
    for channel in body.get("channels") or []:
        out["channels"][channel["name"]] = acc.add_channel(channel)
    for contact in body.get("contacts") or []:
        out["contacts"][contact["name"]] = acc.add_contact(contact)
    acc.designs.update(str(d) for d in body.get("designs") or [])
    for product in body.get("products") or []:
        pid = acc.add_product({k: v for k, v in product.items() if k != "stock"})
        out["products"][product.get("sku") or product["name"]] = pid
        targets = [(pid, product.get("stock"))] + [
            (v_id, v.get("stock")) for v_id, v in zip((v["id"] for v in acc.products[pid]["variants"]),
                                                      product.get("variants") or [], strict=False)]
        for item, stock in targets:
            levels = stock if isinstance(stock, dict) else ({acc.default_warehouse(): stock} if stock else {})
            for where, qty in levels.items():
                wid = by_name.get(where, where)
                if wid not in acc.warehouses:
                    raise HoldedFault(f"unknown warehouse {where!r}")
                acc.move(wid, item, float(qty), "seed")
    return out


def _stock(acc: Account) -> dict[str, Any]:
    by_sku: dict[str, dict[str, float]] = {}
    for sku, (_, item) in acc.sku_index.items():
        by_sku[sku] = {w: acc.stock.get((w, item), 0.0) for w in acc.warehouses}
    return {"warehouses": {w: wh["name"] for w, wh in acc.warehouses.items()},
            "default_warehouse": acc.default_warehouse(), "by_sku": by_sku}


def admin_routes(state: HoldedSandbox) -> list[BaseRoute]:
    def admin(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except HoldedFault as exc:
                return JSONResponse({"error": exc.info}, status_code=exc.http_status)
            except (KeyError, TypeError, ValueError) as exc:
                return JSONResponse({"error": f"bad admin request: {exc!r}"}, status_code=400)
            return result if isinstance(result, Response) else JSONResponse(result)

        return endpoint

    def account(request: Request) -> Account:
        acc = state.accounts.get(request.path_params["key"])
        if acc is None:
            raise HoldedFault(f"no account with key {request.path_params['key']!r}", 404)
        return acc

    def summary(acc: Account) -> dict[str, Any]:
        return {"key": acc.key, "name": acc.name, "contacts": len(acc.contacts), "products": len(acc.products),
                "documents": {t: len(acc.docs[t]) for t in DOC_TYPES if acc.docs[t]},
                "warehouses": list(acc.warehouses.values()), "series": list(acc.series.values()),
                "channels": list(acc.channels.values()), "treasuries": list(acc.treasuries.values()),
                "designs": sorted(acc.designs)}

    async def list_accounts(request: Request) -> Any:
        return [{"key": a.key, "name": a.name} for a in state.accounts.values()]

    async def create_account(request: Request) -> Any:
        body = await request.json()
        acc = state.add_account(str(body["key"]), str(body.get("name") or body["key"]))
        return summary(acc)

    async def get_account(request: Request) -> Any:
        return summary(account(request))

    async def seed(request: Request) -> Any:
        return _seed(account(request), await request.json())

    async def send_units(request: Request) -> Any:
        acc = account(request)
        doc = docs.get_document(acc, "salesorder", request.path_params["id"])
        return docs.send_units(acc, doc, await request.json())

    async def documents(request: Request) -> Any:
        acc = account(request)
        q = request.query_params
        doc_type = q.get("type") or None
        if q.get("ref"):
            found = docs.documents_matching(acc, q["ref"], doc_type)
        else:
            found = [d for t in ([doc_type] if doc_type else DOC_TYPES) for d in acc.docs.get(t, {}).values()]
        return {"count": len(found), "documents": [{"docType": d.doc_type, **d.wire(), "storedAt": d.stored_at}
                                                for d in found]}

    async def contacts(request: Request) -> Any:
        return list(account(request).contacts.values())

    async def stock(request: Request) -> Any:
        return _stock(account(request))

    async def movements(request: Request) -> Any:
        since = int(request.query_params.get("since", "0"))
        return [m for m in account(request).movements if m["seq"] > since]

    async def send_events(request: Request) -> Any:
        return account(request).send_events

    async def quirks(request: Request) -> Any:
        if request.method == "POST":
            try:
                state.quirks.update(await request.json())
            except ValueError as exc:
                raise HoldedFault(str(exc)) from None
        return state.quirks.as_dict()

    async def refusals(request: Request) -> Any:
        if request.method == "DELETE":
            state.refusals.clear()
        elif request.method == "POST":
            body = await request.json()
            state.refusals.append({"match": str(body.get("match", "")), "info": str(body["info"]),
                                   "count": int(body.get("count", 1)),
                                   "http_status": int(body.get("http_status", 400))})
        return state.refusals

    def r(path: str, handler: AdminHandler, *methods: str) -> Route:
        return Route(path, admin(handler), methods=list(methods))

    return [
        r("/accounts", list_accounts, "GET"), r("/accounts", create_account, "POST"),
        r("/accounts/{key}", get_account, "GET"), r("/accounts/{key}/seed", seed, "POST"),
        r("/accounts/{key}/salesorders/{id}/send", send_units, "POST"),
        r("/accounts/{key}/documents", documents, "GET"), r("/accounts/{key}/contacts", contacts, "GET"),
        r("/accounts/{key}/stock", stock, "GET"), r("/accounts/{key}/movements", movements, "GET"),
        r("/accounts/{key}/send_events", send_events, "GET"),
        r("/quirks", quirks, "GET", "POST"), r("/refusals", refusals, "GET", "POST", "DELETE"),
    ]
