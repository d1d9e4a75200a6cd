"""The chaos run's world: Houzz -> TradeGecko and Wix -> Holded sandboxes, orders placed in waves,
a warehouse and a Holded user acting on what arrives, and the final count of what each side holds."""

from __future__ import annotations

import json
import random
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from orderbridge.demo.sandboxes import SandboxProcess, start_all
from orderbridge.demo.scenario import CATALOG, HOUZZ_ACCOUNT, TG_TOKEN
from orderbridge.demo.wix_holded import HOLDED_KEY, PRODUCTS, WixHolded
from orderbridge.ledger import schema as t

HOUZZ, TRADEGECKO, WIX, HOLDED = "chaos-houzz", "chaos-tradegecko", "chaos-wix", "chaos-holded"
SCHEDULE = {"download": 0.5, "workflow": 0.3, "deliver": 0.3, "shipments": 0.5, "upload": 0.3,
            "cancels": 30, "inventory": 600, "stock": 600}


@dataclass
class Faults:
    """Fault rates per call (each sandbox), as the sandbox kit knows them."""

    rates: dict[str, float] = field(default_factory=lambda: {
        "500": 0.03, "503": 0.02, "502": 0.01, "429": 0.02, "timeout": 0.015, "timeout_after": 0.025,
        "malformed": 0.02, "reset": 0.01})
    hang_seconds: float = 1.5

    def plan(self) -> dict[str, Any]:
        return {"rates": self.rates, "hang_seconds": self.hang_seconds}


def toml_value(value: Any) -> str:
    """A TOML value for plain data (strings, numbers, booleans, lists, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()
                                if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_document(cfg: dict[str, Any]) -> str:
    lines: list[str] = []
    for key, value in cfg.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in value.items() if v is not None]
        else:
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items() if v is not None]
        lines.append("")
    return "\n".join(lines)


@dataclass
class World:
    seed: int = 1
    houzz: SandboxProcess = field(default_factory=lambda: SandboxProcess(
        "houzz", {"accounts": [], "rate_limit": {"calls": 100_000, "period": 60}}))
    tradegecko: SandboxProcess = field(default_factory=lambda: SandboxProcess(
        "tradegecko", {"rate_calls": 100_000, "rate_period": 60}))
    wix: SandboxProcess = field(default_factory=lambda: SandboxProcess(
        "wix", {"demo_site": False, "webhook_retry_delays": [0.5, 2.0, 5.0], "rate_limit": {"enabled": False}}))
    holded: SandboxProcess = field(default_factory=lambda: SandboxProcess(
        "holded", {"accounts": [], "rate_limit_enabled": False}))
    houzz_orders: list[str] = field(default_factory=list)
    wix_orders: list[str] = field(default_factory=list)
    shipped_tg: dict[str, list[str]] = field(default_factory=dict)  # TradeGecko order id -> tracking numbers
    sent_holded: dict[str, str] = field(default_factory=dict)  # Holded document id -> tracking number
    books: WixHolded | None = None

    @property
    def boxes(self) -> list[SandboxProcess]:
        return [self.houzz, self.tradegecko, self.wix, self.holded]

    def start(self) -> None:
        start_all(self.boxes)

    def stop(self) -> None:
        for box in self.boxes:
            box.stop()

    # ---------------------------------------------------------------------------- seeding
    def seed_world(self, webhook_url: str) -> None:
        with self.houzz.admin() as h, self.tradegecko.admin() as g:
            h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
            h.post(f"/accounts/{HOUZZ_ACCOUNT['id']}/listings", json=[
                {"SKU": sku, "Title": title, "Price": price, "Quantity": str(stock)}
                for sku, _, title, price, stock in CATALOG]).raise_for_status()
            g.post(f"/accounts/{self.tg_account}/variants", json=[
                {"sku": tg_sku, "name": title, "retail_price": price, "stock": {"Main Warehouse": 100_000}}
                for _, tg_sku, title, price, _ in CATALOG]).raise_for_status()
        self.books = WixHolded(wix=self.wix, holded=self.holded, orders=0)
        self.books.seed_world(webhook_url)

    @property
    def tg_account(self) -> str:
        with self.tradegecko.admin() as g:
            return str(g.get("/accounts").json()[0]["id"])

    def config(self, database_url: str, http_timeout: float) -> dict[str, Any]:
        assert self.books is not None
        fast = {"calls": 100, "period": 1}  # the sandboxes' limits are relaxed: so are the hub's budgets
        wix, holded = self.books.connections(self.wix.url, self.holded.url, fast, SCHEDULE)
        wix["name"], holded["name"] = WIX, HOLDED
        for c in (wix, holded):
            c["merchant"] = "chaos"
        return {
            "database": {"url": database_url},
            "runner": {"overlap_seconds": 120, "lease_seconds": 30, "concurrency": 8, "backoff_max_seconds": 4,
                       "http_timeout_seconds": http_timeout},
            "merchants": [{"name": "chaos"}],
            "connections": [
                {"name": HOUZZ, "merchant": "chaos", "type": "houzz_seller", "test_mode": True,
                 "base_url": self.houzz.url, "schedule": SCHEDULE, "rate_limit": fast,
                 "credentials": {"app_id": HOUZZ_ACCOUNT["app_name"], "username": HOUZZ_ACCOUNT["user_name"],
                                 "token": HOUZZ_ACCOUNT["token"]},
                 "settings": {"inventory_enabled": False}},
                {"name": TRADEGECKO, "merchant": "chaos", "type": "tradegecko", "test_mode": True,
                 "base_url": self.tradegecko.url, "schedule": SCHEDULE, "rate_limit": fast,
                 "credentials": {"access_token": TG_TOKEN}},
                wix, holded,
            ],
            "routes": [{"source": HOUZZ, "backend": TRADEGECKO},
                       {"source": WIX, "backend": HOLDED, "backend_options": {"document_type": "salesorder"}}],
        }

    # ----------------------------------------------------------------------------- orders
    def place(self, houzz: int, wix: int, rng: random.Random) -> None:
        """Place orders at the sources while the hub runs (or lies dead)."""
        if houzz:
            with self.houzz.admin() as h:
                made = h.post(f"/accounts/{HOUZZ_ACCOUNT['id']}/orders/bulk", json={
                    "count": houzz, "skus": [sku for sku, *_ in CATALOG], "max_lines": 3, "seed": rng.random()})
                made.raise_for_status()
                self.houzz_orders += made.json()["order_ids"]
        if wix:
            assert self.books is not None
            sid = self.books.site["siteId"]
            with self.wix.admin() as w:
                specs = []
                for _ in range(wix):
                    sku, _, price, _ = rng.choice(PRODUCTS)
                    specs.append({"lines": [{"sku": sku, "quantity": rng.randint(1, 3), "price": price,
                                             "taxRate": "0.21"}]})
                made = w.post(f"/sites/{sid}/orders/bulk", json={"orders": specs}, params={"events": 1})
                made.raise_for_status()
                self.wix_orders += made.json()["ids"]

    # ------------------------------------------------------------------- acting as people
    def act_as_warehouse(self) -> int:
        """Ship every active TradeGecko order once; orders with several lines in two packages."""
        shipped = 0
        tg = self.tg_account
        with self.tradegecko.admin() as g:
            sku_of = {row["variant_id"]: row["sku"] for row in g.get(f"/accounts/{tg}/stock").json()}
            for order in g.get(f"/accounts/{tg}/orders", params={"status": "active"}).json():
                oid = str(order["id"])
                if oid in self.shipped_tg:
                    continue
                lines = [{"sku": sku_of[ln["variant_id"]], "quantity": ln["quantity"]}
                         for ln in order["order_line_items"] if ln.get("variant_id") in sku_of]
                parts = [lines[:1], lines[1:]] if len(lines) > 1 else [lines]
                numbers = [f"1Z{zlib.crc32(f'{oid}/{i}'.encode()):010d}" for i in range(len(parts))]
                packages = [{"lines": part, "tracking_company": "UPS", "tracking_number": n}
                            for part, n in zip(parts, numbers, strict=True)]
                r = g.post(f"/accounts/{tg}/ship", json={"order_id": order["id"], "packages": packages})
                if r.status_code < 300:
                    self.shipped_tg[oid] = numbers
                    shipped += 1
        return shipped

    def act_as_holded_user(self) -> int:
        """Press "Send units" once on every sales order."""
        sent = 0
        with self.holded.admin() as a:
            docs = a.get(f"/accounts/{HOLDED_KEY}/documents", params={"type": "salesorder"}).json()["documents"]
            for doc in docs:
                if doc["id"] in self.sent_holded:
                    continue
                number = f"1ZH{zlib.crc32(doc['id'].encode()):010d}"
                r = a.post(f"/accounts/{HOLDED_KEY}/salesorders/{doc['id']}/send",
                           json={"carrier": "ups", "tracking": number})
                if r.status_code < 300:
                    self.sent_holded[doc["id"]] = number
                    sent += 1
        return sent

    # ------------------------------------------------------------------------------ faults
    def set_faults(self, faults: Faults | None) -> None:
        for box in self.boxes:
            with box.admin() as a:
                if faults is None:
                    a.delete("/faults").raise_for_status()
                else:
                    a.post("/faults", json=faults.plan()).raise_for_status()

    def faults_injected(self) -> dict[str, dict[str, int]]:
        """Per sandbox, how many calls got each injected fault (from its call log)."""
        out: dict[str, dict[str, int]] = {}
        for box in self.boxes:
            with box.admin() as a:
                calls = a.get("/calls").json()
            out[box.name] = dict(Counter(c["fault"] for c in calls if c.get("fault") and c["fault"] != "rate_limit"))
        return out

    # ------------------------------------------------------------------------------ checks
    def audit(self, ledger: sa.Engine) -> Audit:
        return Audit.collect(self, ledger)


@dataclass
class Audit:
    """Every order checked on every side: in the ledger, in the backend once, confirmed once."""

    placed: int = 0
    in_ledger: int = 0
    confirmed: int = 0
    lost: dict[str, str] = field(default_factory=dict)  # order -> the first reason found
    duplicated: dict[str, str] = field(default_factory=dict)
    disagreements: list[str] = field(default_factory=list)

    def _lose(self, key: str, why: str) -> None:
        self.lost.setdefault(key, f"{key}: {why}")

    def _double(self, key: str, why: str) -> None:
        self.duplicated.setdefault(key, f"{key}: {why}")

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.disagreements)

    def as_dict(self) -> dict[str, Any]:
        return {"orders_placed": self.placed, "orders_in_ledger": self.in_ledger, "orders_confirmed": self.confirmed,
                "orders_lost": len(self.lost), "orders_duplicated": len(self.duplicated),
                "lost": list(self.lost.values())[:20], "duplicated": list(self.duplicated.values())[:20],
                "disagreements": self.disagreements[:20]}

    @classmethod
    def collect(cls, world: World, ledger: sa.Engine) -> Audit:
        audit = cls(placed=len(world.houzz_orders) + len(world.wix_orders))
        o, d, c, s = t.orders, t.deliveries, t.connections, t.shipments
        with ledger.connect() as conn:
            rows = conn.execute(sa.select(o.c.id, o.c.external_id, o.c.status, o.c.cust_ref, c.c.name,
                                          d.c.backend_order_id)
                                .join(c, c.c.id == o.c.connection_id).outerjoin(d, d.c.order_id == o.c.id)).all()
            tracking: dict[int, list[str]] = {}
            for order_id, numbers in conn.execute(sa.select(s.c.order_id, s.c.tracking_numbers).order_by(s.c.id)):
                tracking.setdefault(int(order_id), []).extend(numbers or [])
        by_source = {(r.name, r.external_id): r for r in rows}
        audit.in_ledger = len(rows)
        audit.confirmed = sum(1 for r in rows if r.status == "confirmed")
        placed = [(HOUZZ, x) for x in world.houzz_orders] + [(WIX, x) for x in world.wix_orders]
        extra = set(by_source) - set(placed)
        if extra:
            audit.disagreements.append(f"the ledger holds orders nobody placed: {sorted(extra)[:5]}")
        for key in placed:
            row = by_source.get(key)
            if row is None:
                audit._lose(f"{key[0]} {key[1]}", "not in the ledger")
            elif row.status != "confirmed":
                audit._lose(f"{key[0]} {key[1]}", f"{row.status}, not confirmed")
        audit._check_tradegecko(world, [r for r in rows if r.name == HOUZZ], tracking)
        audit._check_houzz(world, {r.external_id: r for r in rows if r.name == HOUZZ}, tracking)
        audit._check_holded_wix(world, {r.external_id: r for r in rows if r.name == WIX}, tracking)
        return audit

    def _check_tradegecko(self, world: World, rows: list[Any], tracking: dict[int, list[str]]) -> None:
        with world.tradegecko.admin() as g:
            counts = g.get(f"/accounts/{world.tg_account}/orders/counts").json()
        by_ref = counts["by_reference_number"]
        for ref, n in counts["duplicates"].items():
            self._double(f"TradeGecko {ref}", f"{n} orders with this reference")
        for r in rows:
            if by_ref.get(r.cust_ref, 0) == 0:
                self._lose(f"{HOUZZ} {r.external_id}", f"not in TradeGecko ({r.cust_ref})")
                continue
            shipped = world.shipped_tg.get(str(r.backend_order_id))
            if shipped is not None and sorted(tracking.get(r.id, [])) != sorted(shipped):
                self.disagreements.append(f"Houzz {r.external_id}: ledger tracking {tracking.get(r.id)} but the "
                                          f"warehouse shipped {shipped}")
        stray = set(by_ref) - {r.cust_ref for r in rows}
        for ref in sorted(stray):  # created a second time under a new reference, or never recorded
            self._double(f"TradeGecko {ref}", "an order the ledger does not know")

    def _check_houzz(self, world: World, rows: dict[str, Any], tracking: dict[int, list[str]]) -> None:
        acct = HOUZZ_ACCOUNT["id"]
        with world.houzz.admin() as h:
            ships = Counter(a["OrderId"] for a in h.get(f"/accounts/{acct}/actions", params={"action": "Ship"}).json()
                            if a.get("result", "ok") == "ok")
            states = {o["OrderId"]: o for o in h.get(f"/accounts/{acct}/orders", params={"history": "0"}).json()}
        for oid in world.houzz_orders:
            if ships[oid] > 1:
                self._double(f"{HOUZZ} {oid}", f"shipment confirmed {ships[oid]} times at Houzz")
            row = rows.get(oid)
            shipment = (states.get(oid) or {}).get("shipment") or {}
            if row is not None and row.status == "confirmed":
                if ships[oid] == 0:
                    self._lose(f"{HOUZZ} {oid}", "confirmed in the ledger but never at Houzz")
                elif shipment.get("TrackingNumber") not in tracking.get(row.id, []):
                    self.disagreements.append(f"Houzz {oid}: Houzz shows tracking {shipment.get('TrackingNumber')},"
                                              f" the ledger {tracking.get(row.id)}")

    def _check_holded_wix(self, world: World, rows: dict[str, Any], tracking: dict[int, list[str]]) -> None:
        assert world.books is not None
        with world.holded.admin() as a:
            docs = a.get(f"/accounts/{HOLDED_KEY}/documents").json()["documents"]
        with world.wix.admin() as w:
            fulfillments = w.get(f"/sites/{world.books.site['siteId']}/fulfillments").json()
        known = {str(r.backend_order_id) for r in rows.values()}
        stray = [doc["id"] for doc in docs if doc["id"] not in known]
        if stray:
            for doc_id in stray:
                self._double(f"Holded {doc_id}", "a document the ledger does not know")
        for oid in world.wix_orders:
            made = fulfillments.get(oid, [])
            if len(made) > 1:
                self._double(f"{WIX} {oid}", f"{len(made)} fulfillments at Wix")
            row = rows.get(oid)
            if row is None or row.status != "confirmed":
                continue
            if not made:
                self._lose(f"{WIX} {oid}", "confirmed in the ledger but no fulfillment at Wix")
                continue
            number = (made[0].get("trackingInfo") or {}).get("trackingNumber")
            sent = world.sent_holded.get(str(row.backend_order_id))
            if number not in tracking.get(row.id, []) or (sent and number != sent):
                self.disagreements.append(f"Wix {oid}: Wix shows tracking {number}, the ledger {tracking.get(row.id)},"
                                          f" the Holded user sent {sent}")
