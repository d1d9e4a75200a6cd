"""A test-only source ("shop") and backend ("wms") pair, with one small HTTP emulator for both.

They exercise the engine over real HTTP without depending on any real connector.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderbridge.connectors.base import (
    BackendConnector,
    BackendSettings,
    CancelResult,
    Capabilities,
    CheckResult,
    ConfirmMode,
    Credentials,
    DeliveryRequest,
    DownloadedOrder,
    DownloadItem,
    InventoryUpdate,
    SkippedOrder,
    SourceConnector,
    SourceSettings,
    StoredOrder,
    SurveyItem,
    UploadResult,
    WebhookEvent,
    Window,
    WorkflowStep,
)
from orderbridge.connectors.errors import AuthError, DataError, NotFound
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.sandbox_kit import SandboxKit
from orderbridge.domain.models import Cancellation, Order, Shipment, StockLevel

TOKEN = "shop-secret-token-123"


# ------------------------------------------------------------------------------- emulator


def create_app(options: dict[str, Any] | None = None) -> Any:
    kit = SandboxKit("shop")
    shop: dict[str, Any] = {"orders": {}, "confirmations": [], "inventory": {}, "cancels": [], "workflow": []}
    wms: dict[str, Any] = {"orders": {}, "creates": [], "shipments": [], "stock": {}, "next": 1}

    def auth(request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise PermissionError

    def guarded(fn: Any) -> Any:
        async def wrapper(request: Request) -> Response:
            try:
                auth(request)
            except PermissionError:
                return JSONResponse({"error": "bad token"}, status_code=401)
            return await fn(request)  # type: ignore[no-any-return]
        return wrapper

    @guarded
    async def list_orders(request: Request) -> Response:
        since = request.query_params.get("since")
        until = request.query_params.get("until")
        out = [o for o in shop["orders"].values()
               if (not since or o["updated"] >= since) and (not until or o["updated"] <= until)]
        return JSONResponse(sorted(out, key=lambda o: o["updated"]))

    @guarded
    async def get_order(request: Request) -> Response:
        o = shop["orders"].get(request.path_params["oid"])
        return JSONResponse(o) if o else JSONResponse({"error": "not found"}, status_code=404)

    @guarded
    async def ship(request: Request) -> Response:
        body = await request.json()
        shop["confirmations"].append({"order": request.path_params["oid"], **body})
        if request.path_params["oid"] in shop["orders"]:
            shop["orders"][request.path_params["oid"]]["confirmed"] = True  # shown on the order from now on
        return JSONResponse({"ok": True})

    @guarded
    async def step(request: Request) -> Response:
        oid, name = request.path_params["oid"], request.path_params["name"]
        o = shop["orders"].get(oid)
        if o and o.get("fail_step") == name:
            return JSONResponse({"error": f"{name} refused: card declined"}, status_code=422)
        shop["workflow"].append({"order": oid, "step": name})
        return JSONResponse({"ok": True})

    @guarded
    async def inventory(request: Request) -> Response:
        for u in await request.json():
            shop["inventory"][u["sku"]] = u["quantity"]
        return JSONResponse({"ok": True})

    @guarded
    async def cancels(request: Request) -> Response:
        since = request.query_params.get("since")
        return JSONResponse([c for c in shop["cancels"] if not since or c["at"] >= since])

    @guarded
    async def wms_find(request: Request) -> Response:
        ref = request.query_params["ref"]
        return JSONResponse([o for o in wms["orders"].values() if o["ref"] == ref])

    @guarded
    async def wms_create(request: Request) -> Response:
        body = await request.json()
        unknown = [ln["sku"] for ln in body["lines"] if wms["stock"] and ln["sku"] not in wms["stock"]]
        if unknown:
            return JSONResponse({"error": f"unknown sku {unknown[0]}", "sku": unknown[0]}, status_code=422)
        oid = str(wms["next"])
        wms["next"] += 1
        wms["orders"][oid] = {"id": oid, "status": "open", **body}
        wms["creates"].append(body["ref"])
        if wms.get("auto_ship"):  # the warehouse ships every order the moment it arrives
            _ship(body["ref"], {})
        return JSONResponse({"id": oid}, status_code=201)

    @guarded
    async def wms_cancel(request: Request) -> Response:
        o = wms["orders"][request.path_params["oid"]]
        if o["status"] == "shipped":
            return JSONResponse({"error": "already shipped"}, status_code=409)
        o["status"] = "canceled"
        return JSONResponse({"ok": True})

    @guarded
    async def wms_shipments(request: Request) -> Response:
        since = request.query_params.get("since")
        return JSONResponse([s for s in wms["shipments"] if not since or s["at"] >= since])

    @guarded
    async def wms_stock(request: Request) -> Response:
        return JSONResponse([{"sku": k, "available": v} for k, v in wms["stock"].items()])

    # admin
    async def seed_order(request: Request) -> Response:
        body = await request.json()
        for one in body if isinstance(body, list) else [body]:  # one order, or a list of them
            one.setdefault("updated", now())
            shop["orders"][one["id"]] = one
        return JSONResponse({"ok": True})

    async def cancel_order(request: Request) -> Response:
        oid = request.path_params["oid"]
        shop["orders"][oid]["status"] = "cancelled"
        shop["cancels"].append({"id": oid, "at": now()})
        return JSONResponse({"ok": True})

    def _ship(ref: str, body: dict[str, Any]) -> None:
        o = next(o for o in wms["orders"].values() if o["ref"] == ref)
        o["status"] = "shipped"
        n = len(wms["shipments"]) + 1
        wms["shipments"].append({"id": f"S{n}", "ref": ref, "order_id": o["id"], "at": now(),
                                 "carrier": body.get("carrier", "UPS"), "tracking": body.get("tracking", f"1Z{n:08d}"),
                                 "lines": body.get("lines", [])})

    async def wms_ship(request: Request) -> Response:
        body = await request.json()
        _ship(body["ref"], body)
        return JSONResponse({"ok": True})

    async def auto_ship(request: Request) -> Response:
        wms["auto_ship"] = bool((await request.json()).get("enabled", True))
        return JSONResponse({"ok": True})

    async def set_stock(request: Request) -> Response:
        wms["stock"].update(await request.json())
        return JSONResponse({"ok": True})

    async def state(request: Request) -> Response:
        return JSONResponse({"shop": shop, "wms": wms})

    return kit.app(
        [
            Route("/shop/orders", list_orders), Route("/shop/orders/{oid}", get_order),
            Route("/shop/orders/{oid}/ship", ship, methods=["POST"]),
            Route("/shop/orders/{oid}/steps/{name}", step, methods=["POST"]),
            Route("/shop/inventory", inventory, methods=["POST"]), Route("/shop/cancels", cancels),
            Route("/wms/orders", wms_find), Route("/wms/orders", wms_create, methods=["POST"]),
            Route("/wms/orders/{oid}/cancel", wms_cancel, methods=["POST"]),
            Route("/wms/shipments", wms_shipments), Route("/wms/stock", wms_stock),
        ],
        [
            Route("/shop/orders", seed_order, methods=["POST"]),
            Route("/shop/orders/{oid}/cancel", cancel_order, methods=["POST"]),
            Route("/wms/ship", wms_ship, methods=["POST"]), Route("/wms/stock", set_stock, methods=["POST"]),
            Route("/wms/auto_ship", auto_ship, methods=["POST"]),
            Route("/state", state),
        ],
    )


def now() -> str:
    return datetime.now(UTC).isoformat()


# ------------------------------------------------------------------------------ connectors


class ShopCredentials(Credentials):
    token: str


class ShopSettings(SourceSettings):
    process_step: bool = Field(default=False, description="run a 'process' step before delivery (and the charge)")
    charge_step: bool = Field(default=False, description="run a 'charge' step before delivery")
    confirm_at_first: bool = Field(default=False, description="confirm the whole order at its first shipment")


class WmsSettings(BackendSettings):
    crash_after_create: bool = Field(default=False, description="test only: die right after a create")


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _map(raw: dict[str, Any]) -> DownloadItem:
    if raw.get("status") == "cancelled":
        return SkippedOrder(external_id=str(raw["id"]), reason="cancelled at the shop", final=True)
    try:
        order = Order(
            external_id=str(raw["id"]), cust_po_no=str(raw.get("number", raw["id"])),
            order_date=datetime.fromisoformat(raw["created"]), source_status=raw.get("status", "open"),
            ship_to={"name": raw.get("name", ""), "address1": raw.get("street", ""), "city": raw.get("city", "")},
            lines=[{"sku": ln["sku"], "quantity": ln["qty"], "unit_price": ln.get("price", 0)}
                   for ln in raw.get("lines", [])],
            shipping_method=raw.get("ship", ""), paid=raw.get("paid", True),
        )
    except (ValidationError, KeyError, ValueError, TypeError) as exc:
        return DownloadedOrder(external_id=str(raw.get("id", "?")), raw=raw, error=f"malformed order: {exc}",
                               fix="correct the order at the shop")
    return DownloadedOrder(external_id=order.external_id, raw=raw, order=order)


class ShopSource(SourceConnector):
    type_name = "test_shop"
    display_name = "Test shop"
    settings_model = ShopSettings
    credentials_model = ShopCredentials
    capabilities = Capabilities(download=True, workflow=True, shipment_upload=True, inventory_push=True,
                                cancel_detection=True, webhooks=True, diagnose=True)

    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        return RateSpec(calls=1000, period=1.0)

    async def _get(self, path: str, **params: Any) -> Any:
        r = await self.ctx.http.request("GET", path, params=params, headers=_headers(self.ctx.credentials.token))
        if r.status_code == 401:
            raise AuthError("the shop token is wrong", fix="copy the token from the shop's settings")
        if r.status_code == 404:
            raise NotFound("no such order")
        return r.json()

    async def _post(self, path: str, body: Any) -> Any:
        r = await self.ctx.http.request("POST", path, json=body, headers=_headers(self.ctx.credentials.token))
        if r.status_code == 401:
            raise AuthError("the shop token is wrong", fix="copy the token from the shop's settings")
        if r.status_code == 422:
            raise DataError(r.json()["error"], fix="ask the buyer for another card")
        return r.json()

    async def check(self) -> CheckResult:
        try:
            await self._get("/shop/orders", since="9999")
        except AuthError as exc:
            return CheckResult(False, exc.message)
        return CheckResult(True, "connected")

    async def download(self, window: Window) -> AsyncIterator[DownloadItem]:
        params = {"until": window.until.isoformat()}
        if window.since:
            params["since"] = window.since.isoformat()
        for raw in await self._get("/shop/orders", **params):
            yield _map(raw)

    async def fetch_order(self, external_id: str) -> DownloadItem | None:
        try:
            return _map(await self._get(f"/shop/orders/{external_id}"))
        except NotFound:
            return None

    def workflow_steps(self, order: Order) -> list[WorkflowStep]:
        wanted = [("process", "Process at the shop", self.settings.process_step),
                  ("charge", "Charge at the shop", self.settings.charge_step)]
        return [WorkflowStep(name, label) for name, label, on in wanted if on]

    async def run_workflow_step(self, step: str, order: StoredOrder, *, retry: bool = False) -> str:
        await self._post(f"/shop/orders/{order.external_id}/steps/{step}", {})
        return ""

    def confirm_mode(self) -> ConfirmMode:
        return ConfirmMode.ORDER_AT_FIRST if self.settings.confirm_at_first else ConfirmMode.ORDER_WHEN_COMPLETE

    async def upload_shipments(self, order: StoredOrder, shipments: list[Shipment]) -> UploadResult:
        tracking = [t for s in shipments for t in s.all_tracking()]
        await self._post(f"/shop/orders/{order.external_id}/ship", {"tracking": tracking})
        return UploadResult(note=f"{len(tracking)} tracking number(s)")

    async def is_confirmed(self, order: StoredOrder, shipments: list[Shipment]) -> bool | None:
        return bool((await self._get(f"/shop/orders/{order.external_id}")).get("confirmed"))

    async def push_inventory(self, updates: list[InventoryUpdate]) -> dict[str, str]:
        await self._post("/shop/inventory", [{"sku": u.sku, "quantity": u.quantity} for u in updates])
        return {}

    async def cancellations(self, window: Window) -> AsyncIterator[Cancellation]:
        for c in await self._get("/shop/cancels", **({"since": window.since.isoformat()} if window.since else {})):
            yield Cancellation(external_id=c["id"], reason="cancelled by the buyer")

    async def survey(self, window: Window, external_id: str | None = None) -> list[SurveyItem]:
        out = []
        for raw in await self._get("/shop/orders"):
            if external_id and raw["id"] != external_id:
                continue
            out.append(SurveyItem(raw["id"], raw.get("status", ""), datetime.fromisoformat(raw["created"]),
                                  "cancelled" if raw.get("status") == "cancelled" else ""))
        return out

    async def parse_webhook(self, headers: Any, body: bytes) -> WebhookEvent:
        import json

        if headers.get("x-shop-token") != self.ctx.credentials.token:
            raise AuthError("webhook signature is wrong")
        data = json.loads(body)
        return WebhookEvent(event_id=data["event"], kind="order", external_ids=[data["order"]])


class WmsBackend(BackendConnector):
    type_name = "test_wms"
    display_name = "Test WMS"
    settings_model = WmsSettings
    credentials_model = ShopCredentials
    capabilities = Capabilities(deliver=True, lookup_by_reference=True, shipment_pickup=True,
                                inventory_pickup=True, cancel=True)

    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        return RateSpec(calls=1000, period=1.0)

    async def check(self) -> CheckResult:
        r = await self.ctx.http.request("GET", "/wms/stock", headers=_headers(self.ctx.credentials.token))
        return CheckResult(r.status_code == 200, "connected" if r.status_code == 200 else "the WMS token is wrong")

    async def find_order(self, request: DeliveryRequest) -> str | None:
        r = await self.ctx.http.request("GET", "/wms/orders", params={"ref": request.cust_ref},
                                        headers=_headers(self.ctx.credentials.token))
        found = r.json()
        return str(found[0]["id"]) if found else None

    async def create_order(self, request: DeliveryRequest, idempotency_key: str) -> str:
        body = {"ref": request.cust_ref, "po": request.cust_po_no, "service": request.service,
                "lines": [{"sku": ln.sku, "qty": ln.quantity} for ln in request.order.lines]}
        r = await self.ctx.http.request("POST", "/wms/orders", json=body, headers=_headers(self.ctx.credentials.token))
        if r.status_code == 422:
            sku = r.json()["sku"]
            raise DataError(f"SKU {sku} is unknown to the WMS", fix="add an alias or create the product",
                            code="unknown_sku")
        if r.status_code == 401:
            raise AuthError("the WMS token is wrong")
        if self.settings.crash_after_create:
            os.kill(os.getpid(), signal.SIGKILL)  # the create happened; the ledger never hears of it
        return str(r.json()["id"])

    async def shipments(self, window: Window) -> AsyncIterator[Shipment]:
        params = {"since": window.since.isoformat()} if window.since else {}
        r = await self.ctx.http.request("GET", "/wms/shipments", params=params,
                                        headers=_headers(self.ctx.credentials.token))
        for s in r.json():
            yield Shipment(external_id=s["id"], order_ref=s["ref"], backend_order_id=s["order_id"],
                           carrier=s["carrier"], tracking_numbers=[s["tracking"]],
                           lines=[{"sku": ln["sku"], "quantity": ln["qty"]} for ln in s["lines"]])

    async def stock_levels(self) -> list[StockLevel]:
        r = await self.ctx.http.request("GET", "/wms/stock", headers=_headers(self.ctx.credentials.token))
        return [StockLevel(sku=s["sku"], available=s["available"], on_hand=s["available"]) for s in r.json()]

    async def cancel_order(self, backend_order_id: str, request: DeliveryRequest) -> CancelResult:
        r = await self.ctx.http.request("POST", f"/wms/orders/{backend_order_id}/cancel",
                                        headers=_headers(self.ctx.credentials.token))
        if r.status_code == 409:
            return CancelResult(canceled=False, too_late=True, note="already shipped")
        return CancelResult(canceled=True)


