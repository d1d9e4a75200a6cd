"""The benchmark's world: S Houzz Seller stores selling one catalog fulfilled from one TradeGecko account.

The sandboxes run in their own processes (as real APIs would); orders are seeded through their admin
routes with realistic shapes: 1-5 lines, most orders small, SKUs that exist in TradeGecko.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from orderbridge.demo.sandboxes import SandboxProcess, start_all

TG_TOKEN = "tradegecko-sandbox-token"  # the TradeGecko sandbox's demo account
CATALOG_SIZE = 40
STOCK_PER_SKU = 1_000_000  # never runs out: the benchmark measures moving orders, not back-orders
LINE_WEIGHTS = (50, 25, 13, 7, 5)  # orders with 1, 2, 3, 4, 5 lines (%): most orders are small
SEED_CHUNK = 1000  # orders per admin call

# Documented limits (see docs/sandboxes): Houzz 60 calls a minute per Application ID, TradeGecko
# 300 calls per 5-minute window per (application, account).
HOUZZ_REAL = {"calls": 60, "period": 60}
TG_REAL = {"rate_calls": 300, "rate_period": 300}


@dataclass(frozen=True)
class HouzzStore:
    key: str
    app_name: str
    user_name: str
    token: str

    def account(self) -> dict[str, Any]:
        return {"id": self.key, "app_name": self.app_name, "user_name": self.user_name, "token": self.token,
                "program": "seller", "mode": "legacy"}


@dataclass
class World:
    houzz: SandboxProcess
    tradegecko: SandboxProcess
    stores: list[HouzzStore]
    skus: list[str]
    tg_account: int = 0
    sku_of_variant: dict[int, str] = field(default_factory=dict)
    orders_of: dict[str, list[str]] = field(default_factory=dict)  # store key -> Houzz order ids

    @property
    def order_ids(self) -> list[str]:
        return [oid for ids in self.orders_of.values() for oid in ids]

    def store_of(self) -> dict[str, str]:
        return {oid: key for key, ids in self.orders_of.items() for oid in ids}


def sandbox_options(real_limits: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Houzz, TradeGecko) sandbox options: documented rate limits, or none (throughput runs)."""
    houzz: dict[str, Any] = {"accounts": [], "auth_expiry_days": 0}
    tg: dict[str, Any] = {}
    if real_limits:
        houzz["rate_limit"] = dict(HOUZZ_REAL)
        tg.update(TG_REAL)
    else:
        houzz["rate_limit"] = False
        tg["rate_limit"] = False
    return houzz, tg


def start_sandboxes(real_limits: bool) -> tuple[SandboxProcess, SandboxProcess]:
    houzz_opts, tg_opts = sandbox_options(real_limits)
    houzz, tradegecko = start_all([SandboxProcess("houzz", houzz_opts), SandboxProcess("tradegecko", tg_opts)])
    return houzz, tradegecko


def make_stores(sources: int) -> list[HouzzStore]:
    # Each store has its own Application ID, so each has its own Houzz call budget.
    return [HouzzStore(key=f"bench-store-{i}", app_name=f"bench-app-{i}", user_name=f"bench-store-{i}",
                       token=f"bench-token-{i:04d}-houzz") for i in range(1, sources + 1)]


def catalog() -> list[tuple[str, str, str]]:
    """(SKU, title, price)."""
    rng = random.Random(11)
    kinds = ("Oak chair", "Walnut table", "Brass lamp", "Wool rug", "Linen sofa", "Arched mirror", "Teak bench",
             "Ceramic vase")
    return [(f"BN-{i:03d}", f"{kinds[i % len(kinds)]} {i}", f"{rng.randint(20, 2000)}.00")
            for i in range(1, CATALOG_SIZE + 1)]


def line_count(rng: random.Random) -> int:
    return rng.choices(range(1, len(LINE_WEIGHTS) + 1), weights=LINE_WEIGHTS)[0]


FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken", "Radia",
         "Tim", "Katherine", "Dennis", "Shafi", "Leslie")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy", "Hamilton",
        "Thompson", "Perlman", "Berners-Lee", "Johnson", "Ritchie", "Goldwasser", "Lamport")
PLACES = (("Springfield", "IL", "62701"), ("Austin", "TX", "73301"), ("Portland", "OR", "97201"),
          ("Brooklyn", "NY", "11201"), ("Denver", "CO", "80202"), ("Seattle", "WA", "98101"))


def order_body(rng: random.Random, items: list[tuple[str, str, str]]) -> dict[str, Any]:
    """One Houzz order as a buyer places it (the sandbox stamps Created and the OrderId)."""
    lines = rng.sample(items, line_count(rng))
    city, state, zip_code = rng.choice(PLACES)
    return {
        "CustomerName": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "ShippingMethod": rng.choice(("Standard", "Standard", "Expedited")),
        "Address": {"Address": f"{rng.randint(1, 9999)} {rng.choice(('Main St', 'Oak Ave', 'Elm Rd'))}",
                    "City": city, "State": state, "Zip": zip_code, "Country": "US",
                    "Phone": f"555-{rng.randint(1000, 9999)}"},
        "OrderItems": [{"Type": "Product", "SKU": sku, "Title": title, "Quantity": str(rng.choice((1, 1, 1, 2, 3))),
                        "Price": price, "Shipping": "0.00", "Tax": "0.00"} for sku, title, price in lines],
    }


def seed_catalog(houzz: SandboxProcess, tradegecko: SandboxProcess, stores: list[HouzzStore]) -> World:
    items = catalog()
    world = World(houzz=houzz, tradegecko=tradegecko, stores=stores, skus=[s for s, _, _ in items])
    with houzz.admin() as h, tradegecko.admin() as g:
        for store in stores:
            h.post("/accounts", json=store.account()).raise_for_status()
            h.post(f"/accounts/{store.key}/listings", json=[
                {"SKU": sku, "Title": title, "Price": price, "Quantity": "0"} for sku, title, price in items
            ]).raise_for_status()
            world.orders_of[store.key] = []
        world.tg_account = int(g.get("/accounts").json()[0]["id"])
        made = g.post(f"/accounts/{world.tg_account}/variants", json=[
            {"sku": sku, "name": title, "retail_price": price, "stock": {"Main Warehouse": STOCK_PER_SKU}}
            for sku, title, price in items])
        made.raise_for_status()
        world.sku_of_variant = {int(v["id"]): str(v["sku"]) for v in made.json()}
    return world


def seed_orders(world: World, count: int, seed: int = 7) -> None:
    """``count`` orders spread evenly over the stores, placed now."""
    rng = random.Random(seed)
    items = catalog()
    per = [count // len(world.stores) + (1 if i < count % len(world.stores) else 0)
           for i in range(len(world.stores))]
    with world.houzz.admin() as h:
        for store, n in zip(world.stores, per, strict=True):
            for start in range(0, n, SEED_CHUNK):
                bodies = [order_body(rng, items) for _ in range(min(SEED_CHUNK, n - start))]
                r = h.post(f"/accounts/{store.key}/orders", json=bodies)
                r.raise_for_status()
                world.orders_of[store.key] += [str(o["OrderId"]) for o in r.json()]


def place_order(world: World, store: HouzzStore, rng: random.Random) -> str:
    """One order placed now (the latency mode's trickle)."""
    with world.houzz.admin() as h:
        r = h.post(f"/accounts/{store.key}/orders", json=order_body(rng, catalog()))
        r.raise_for_status()
    oid = str(r.json()[0]["OrderId"])
    world.orders_of[store.key].append(oid)
    return oid
