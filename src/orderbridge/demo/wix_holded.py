"""The demo's second world: a Wix store booking its orders in Holded as sales orders.

Orders reach the hub by signed webhook (near real time) and by polling (the safety net); a Holded
user presses "Send units" with a tracking number, which becomes a Wix fulfillment; Holded's stock
flows back to Wix. One order is placed unpaid: a sales order is imported whatever the payment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from orderbridge.demo.sandboxes import SandboxProcess

PRODUCTS = [("MUG-1", "Stoneware mug", "12.00", 200), ("TEA-2", "Loose-leaf tea tin", "9.50", 150),
            ("POT-3", "Cast-iron teapot", "48.00", 40)]
HOLDED_KEY = "holded-demo-key-7c21"


@dataclass
class WixHolded:
    wix: SandboxProcess
    holded: SandboxProcess
    orders: int
    site: dict[str, Any] = field(default_factory=dict)
    order_ids: list[str] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    def _call(self, box: SandboxProcess, method: str, path: str, body: Any = None, **params: Any) -> Any:
        with box.admin() as a:
            r = a.request(method, path, json=body, params=params)
        if r.status_code >= 300:
            raise RuntimeError(f"{box.name} sandbox: {method} {path} -> {r.status_code} {r.text[:300]}")
        return r.json()

    def seed_world(self, webhook_url: str) -> None:
        self.site = self._call(self.wix, "POST", "/sites", {"siteId": str(uuid.uuid4()), "webhookUrl": webhook_url})
        sid = self.site["siteId"]
        self._call(self.wix, "POST", f"/sites/{sid}/products", {"products": [
            {"name": n, "sku": s, "price": p, "quantity": q} for s, n, p, q in PRODUCTS]})
        self._call(self.holded, "POST", "/accounts", {"key": HOLDED_KEY, "name": "Demo S.L."})
        self._call(self.holded, "POST", f"/accounts/{HOLDED_KEY}/seed", {"products": [
            {"sku": s, "name": n, "price": float(p), "stock": q} for s, n, p, q in PRODUCTS]})

    def place_orders(self) -> None:
        """Placed once the hub listens, so the webhooks find it."""
        sid = self.site["siteId"]
        for i in range(self.orders):
            sku, _, price, _ = PRODUCTS[i % len(PRODUCTS)]
            spec: dict[str, Any] = {"lines": [{"sku": sku, "quantity": 1 + i % 2, "price": price, "taxRate": "0.21"}]}
            if i == 1:
                spec.update(paymentStatus="NOT_PAID", status="PENDING")
            made = self._call(self.wix, "POST", f"/sites/{sid}/orders", spec, events=1)
            self.order_ids.append(str(made["order"]["id"]))
        self.log.append(f"{self.orders} Wix orders placed (one unpaid)")

    def connections(self, wix_url: str, holded_url: str, rate: dict[str, Any] | None,
                    schedule: dict[str, float]) -> list[dict[str, Any]]:
        key = self._call(self.wix, "GET", "/webhooks/public-key")["publicKey"]
        return [
            {"name": "demo-wix", "merchant": "demo", "type": "wix", "test_mode": True, "base_url": wix_url,
             "schedule": schedule, "rate_limit": rate,
             "credentials": {"api_key": self.site["apiKey"], "site_id": self.site["siteId"],
                             "webhook_public_key": key}},
            {"name": "demo-holded", "merchant": "demo", "type": "holded", "test_mode": True,
             "base_url": holded_url, "schedule": schedule, "rate_limit": rate,
             "credentials": {"api_key": HOLDED_KEY}},
        ]

    route = {"source": "demo-wix", "backend": "demo-holded", "backend_options": {"document_type": "salesorder"}}

    def act_as_holded_user(self) -> None:
        """Press "Send units" on every sales order not sent yet."""
        docs = self._call(self.holded, "GET", f"/accounts/{HOLDED_KEY}/documents", type="salesorder")["documents"]
        for doc in docs:
            if doc["id"] in self.sent:
                continue
            try:
                self._call(self.holded, "POST", f"/accounts/{HOLDED_KEY}/salesorders/{doc['id']}/send",
                           {"carrier": "ups", "tracking": f"1ZH{doc['id'][-8:].upper()}"})
            except (RuntimeError, httpx.HTTPError):
                continue
            self.sent.add(doc["id"])
            self.log.append(f"Holded user sent the units of sales order {doc['id'][-6:]}")

    def expected_final(self, status: str, external_id: str) -> bool:
        return status == "confirmed"

    def duplicates(self) -> dict[str, Any]:
        docs = self._call(self.holded, "GET", f"/accounts/{HOLDED_KEY}/documents")["documents"]
        fulfillments = self._call(self.wix, "GET", f"/sites/{self.site['siteId']}/fulfillments")
        return {"holded_documents": len(docs),
                "wix_orders_with_several_fulfillments": {k: len(v) for k, v in fulfillments.items() if len(v) > 1},
                "wix_fulfillments": sum(len(v) for v in fulfillments.values())}
