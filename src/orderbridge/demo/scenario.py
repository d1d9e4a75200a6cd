"""The demo's world: a Houzz Seller store selling furniture, fulfilled from TradeGecko.

It seeds a catalog on both sides and a stream of orders, some with the problems merchants meet
(an SKU TradeGecko does not know, a failed charge, a buyer's cancellation), and then acts as the
warehouse (shipping what arrives, some orders in two packages) and as the merchant (adding the
missing SKU alias once the order shows the error).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from orderbridge.demo.sandboxes import SandboxProcess

HOUZZ_ACCOUNT = {"id": "demo-store", "app_name": "demo-app", "user_name": "demo-store",
                 "token": "houzz-demo-token-3f9a", "program": "seller", "mode": "legacy"}
TG_TOKEN = "tradegecko-sandbox-token"

CATALOG = [  # (Houzz SKU, TradeGecko SKU, title, price, stock)
    ("CH-OAK-01", "CH-OAK-01", "Oak dining chair", "189.00", 120),
    ("TB-WAL-02", "TB-WAL-02", "Walnut dining table", "1490.00", 30),
    ("LP-BRS-03", "LP-BRS-03", "Brass floor lamp", "249.00", 60),
    ("RG-WOL-04", "RG-WOL-04", "Wool area rug 8x10", "690.00", 40),
    ("SF-LIN-05", "SF-LIN-05", "Linen three-seat sofa", "2190.00", 15),
    ("MR-ARC-06", "MR-ARC-06", "Arched wall mirror", "320.00", 50),
]
LEGACY_SKU, LEGACY_TARGET = "HZ-LAMP-OLD", "LP-BRS-03"  # a listing whose SKU TradeGecko does not know


@dataclass
class Scenario:
    houzz: SandboxProcess
    tradegecko: SandboxProcess
    orders: int
    seed: int = 7
    order_ids: list[str] = field(default_factory=list)
    unknown_sku_order: str = ""
    failed_charge_order: str = ""
    cancel_order: str = ""
    shipped: set[str] = field(default_factory=set)
    alias_added: bool = False
    canceled_at_source: bool = False
    log: list[str] = field(default_factory=list)

    @property
    def tg_account(self) -> str:
        with self.tradegecko.admin() as a:
            return str(a.get("/accounts").json()[0]["id"])

    def seed_world(self) -> None:
        rng = random.Random(self.seed)
        with self.houzz.admin() as h, self.tradegecko.admin() as g:
            h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
            acct = HOUZZ_ACCOUNT["id"]
            listings = [{"SKU": sku, "Title": title, "Price": price, "Quantity": str(stock)}
                        for sku, _, title, price, stock in CATALOG]
            listings.append({"SKU": LEGACY_SKU, "Title": "Brass floor lamp (old listing)", "Price": "249.00"})
            h.post(f"/accounts/{acct}/listings", json=listings).raise_for_status()
            tg = g.get("/accounts").json()[0]["id"]
            g.post(f"/accounts/{tg}/variants", json=[
                {"sku": tg_sku, "name": title, "retail_price": price, "stock": {"Main Warehouse": stock}}
                for _, tg_sku, title, price, stock in CATALOG]).raise_for_status()
            good = [sku for sku, *_ in CATALOG]
            normal = max(self.orders - 3, 1)
            made = h.post(f"/accounts/{acct}/orders/bulk", json={
                "count": normal, "skus": good, "max_lines": 3, "seed": rng.random()}).json()
            self.order_ids = list(made["order_ids"])
            if self.orders >= 4:
                self.unknown_sku_order = self._order(h, acct, [(LEGACY_SKU, 1), ("CH-OAK-01", 2)], "Grace Hopper")
                self.failed_charge_order = self._order(h, acct, [("RG-WOL-04", 1)], "Alan Turing")
                h.post(f"/accounts/{acct}/orders/{self.failed_charge_order}/fail_next_charge",
                       json={"reason": "The card was declined (insufficient funds).", "count": 99})
                self.cancel_order = self._order(h, acct, [("SF-LIN-05", 1)], "Edsger Dijkstra")
                self.order_ids += [self.unknown_sku_order, self.failed_charge_order, self.cancel_order]

    def _order(self, h: Any, acct: str, lines: list[tuple[str, int]], name: str) -> str:
        body = {"CustomerName": name, "ShippingMethod": "Standard",
                "Address": {"Address": "12 Harbor Rd", "City": "Portland", "State": "OR", "Zip": "97201",
                            "Country": "US", "Phone": "555-0100"},
                "OrderItems": [{"Type": "Product", "SKU": sku, "Title": sku, "Quantity": str(q), "Price": "249.00",
                                "Shipping": "0.00", "Tax": "19.92"} for sku, q in lines]}
        r = h.post(f"/accounts/{acct}/orders", json=body)
        r.raise_for_status()
        return str(r.json()[0]["OrderId"])

    # ------------------------------------------------------------------ acting as people
    def act_as_warehouse(self, ledger_refs: dict[str, str]) -> None:
        """Ship every order that reached TradeGecko (the cancelled one excepted)."""
        with self.tradegecko.admin() as g:
            tg = self.tg_account
            sku_of = {row["variant_id"]: row["sku"] for row in g.get(f"/accounts/{tg}/stock").json()}
            for order in g.get(f"/accounts/{tg}/orders", params={"status": "active"}).json():
                ref = order["reference_number"]
                external = ledger_refs.get(ref)
                if ref in self.shipped or external is None or external == self.cancel_order:
                    continue
                lines = [{"sku": sku_of[ln["variant_id"]], "quantity": ln["quantity"]}
                         for ln in order["order_line_items"] if ln.get("variant_id") in sku_of]
                carriers = [("UPS", "1Z"), ("FedEx", "7")]
                parts = [lines[:1], lines[1:]] if len(lines) > 1 else [lines]  # several lines: two packages
                packages: list[dict[str, Any]] = []
                for i, part in enumerate(parts):
                    carrier, prefix = carriers[i % 2]
                    number = zlib.crc32(f"{ref}/{i}".encode())
                    packages.append({"lines": part, "tracking_company": carrier,
                                     "tracking_number": f"{prefix}{number:010d}"})
                r = g.post(f"/accounts/{tg}/ship", json={"order_id": order["id"], "packages": packages})
                if r.status_code < 300:
                    self.shipped.add(ref)
                    self.log.append(f"warehouse shipped {ref} in {len(packages)} package(s)")

    def act_as_buyer(self, statuses: dict[str, str]) -> None:
        """Cancel one order once it reached TradeGecko: it must be voided there."""
        if self.cancel_order and not self.canceled_at_source and statuses.get(self.cancel_order) == "at_wms":
            with self.houzz.admin() as h:
                h.post(f"/accounts/{HOUZZ_ACCOUNT['id']}/orders/{self.cancel_order}/cancel",
                       json={"by": "houzz", "code": 2, "reason": "Buyer changed their mind"})
            self.canceled_at_source = True
            self.log.append(f"buyer cancelled Houzz order {self.cancel_order}")

    def expected_final(self, status: str, external_id: str) -> bool:
        if external_id == self.failed_charge_order:
            return status == "error"
        if external_id == self.cancel_order:
            return status == "canceled"
        return status == "confirmed"

    def duplicates(self) -> dict[str, Any]:
        with self.tradegecko.admin() as g, self.houzz.admin() as h:
            counts = g.get(f"/accounts/{self.tg_account}/orders/counts").json()
            ships = h.get(f"/accounts/{HOUZZ_ACCOUNT['id']}/actions", params={"action": "Ship"}).json()
        per_order: dict[str, int] = {}
        for a in ships:
            if a.get("result", "ok") == "ok":
                per_order[a["OrderId"]] = per_order.get(a["OrderId"], 0) + 1
        return {"backend_duplicates": counts.get("duplicates", {}),
                "backend_orders": counts.get("total", 0),
                "confirmations_at_source": sum(per_order.values()),
                "duplicate_confirmations": {k: v for k, v in per_order.items() if v > 1}}
