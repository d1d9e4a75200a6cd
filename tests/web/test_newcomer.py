"""A newcomer's path through the dashboard, in a real browser: log in, connect TradeGecko and a Houzz
store (a wrong token first, told in words, then fixed), watch orders arrive, fix an unknown SKU with an
alias from the order's page, and see the order delivered. Screenshots of the main pages come from here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orderbridge.connectors.houzz.sandbox import create_app as houzz_sandbox
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.tradegecko.sandbox import DEMO_TOKEN
from orderbridge.connectors.tradegecko.sandbox import create_app as tradegecko_sandbox
from orderbridge.demo.scenario import HOUZZ_ACCOUNT
from orderbridge.ledger import schema as t
from tests.web.conftest import login, wait_for_text

ACCT = HOUZZ_ACCOUNT["id"]
FAST = {"download": "0.5", "workflow": "0.3", "upload": "0.5", "cancels": "2", "inventory": "1",
        "deliver": "0.3", "shipments": "0.5", "stock": "1"}
CATALOG = [("CH-OAK-01", "Oak dining chair"), ("LP-BRS-03", "Brass floor lamp")]
OLD_SKU = "HZ-LAMP-OLD"  # a Houzz listing whose SKU TradeGecko does not know


@pytest.fixture
def sandboxes() -> Iterator[tuple[ServedApp, ServedApp]]:
    with ServedApp(houzz_sandbox({"rate_limit": False, "accounts": []})) as houzz, \
            ServedApp(tradegecko_sandbox({"rate_limit": False})) as tg:
        yield houzz, tg


def seed(houzz: ServedApp, tg: ServedApp) -> list[str]:
    import httpx

    with httpx.Client(base_url=houzz.url + "/__sandbox__", timeout=10) as h, \
            httpx.Client(base_url=tg.url + "/__sandbox__", timeout=10) as g:
        h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
        h.post(f"/accounts/{ACCT}/listings", json=[{"SKU": s, "Title": n, "Price": "100.00", "Quantity": "20"}
                                                   for s, n in [*CATALOG, (OLD_SKU, "Lamp (old listing)")]])
        account = g.get("/accounts").json()[0]["id"]
        g.post(f"/accounts/{account}/variants", json=[{"sku": s, "name": n, "retail_price": "100.00",
                                                       "stock": {"Main Warehouse": 40}} for s, n in CATALOG])
        ids = []
        for name, lines in [("Ada Lovelace", [("CH-OAK-01", 2)]), ("Grace Hopper", [(OLD_SKU, 1)]),
                            ("Alan Turing", [("LP-BRS-03", 1), ("CH-OAK-01", 1)])]:
            body = {"CustomerName": name, "ShippingMethod": "Standard",
                    "Address": {"Address": "1 Main St", "City": "Austin", "State": "TX", "Zip": "73301",
                                "Country": "US"},
                    "OrderItems": [{"Type": "Product", "SKU": s, "Title": s, "Quantity": str(q), "Price": "100.00"}
                                   for s, q in lines]}
            ids.append(str(h.post(f"/accounts/{ACCT}/orders", json=body).json()[0]["OrderId"]))
    return ids


def unlabelled(page: Any) -> list[str]:
    """Form controls a screen reader could not name."""
    return list(page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)"""))


def fill_schedule(page: Any) -> None:
    page.get_by_text("Schedule and call budget").click()  # a closed <details>
    for job, seconds in FAST.items():
        box = page.locator(f'[name="schedule.{job}"]')
        if box.count():
            box.fill(seconds)
    page.get_by_label("API calls at most").fill("50")  # the sandboxes' limits are off
    page.get_by_label("per this many seconds").fill("1")


def test_newcomer_connects_a_store_and_fixes_an_order(browser: Any, serve: Any, sandboxes: Any, shots: Path) -> None:
    houzz, tg = sandboxes
    houzz_ids = seed(houzz, tg)
    app = serve(runner=True)
    base = app.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # Every page asks for a login first.
    page.goto(base + "/orders")
    assert page.url.startswith(base + "/login")
    login(page, base)
    assert "Overview" in page.inner_text("h1")

    # The backend: TradeGecko (its sandbox), from the list of connector types.
    page.goto(base + "/connections/new")
    page.get_by_role("link", name=re.compile("^TradeGecko backend")).click()
    page.fill('[name="name"]', "acme-tradegecko")
    page.fill('[name="merchant"]', "acme")
    page.fill('[name="base_url"]', tg.url)
    page.fill('[name="credentials.access_token"]', DEMO_TOKEN)
    fill_schedule(page)
    page.get_by_role("button", name="Save and test").click()
    assert "Test passed" in page.inner_text("main"), page.inner_text("main")

    # The store: Houzz Seller with a wrong token; the test says which credential is wrong.
    page.goto(base + "/connections/new?type=houzz_seller")
    form_help = page.inner_text("main form")
    assert "Which Houzz order status to wait for" in form_help and "Mark Orders as Processed" in form_help
    assert unlabelled(page) == []
    page.keyboard.press("Tab")  # keyboard users first meet the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.fill('[name="name"]', "acme-houzz")
    page.fill('[name="merchant"]', "acme")
    page.fill('[name="base_url"]', houzz.url)
    page.select_option('[name="route"]', "acme-tradegecko")
    page.fill('[name="credentials.app_id"]', HOUZZ_ACCOUNT["app_name"])
    page.fill('[name="credentials.username"]', HOUZZ_ACCOUNT["user_name"])
    page.fill('[name="credentials.token"]', "not-the-token")
    fill_schedule(page)
    page.fill('[name="settings.houzz_timezone"]', "Mars/Olympus")
    page.get_by_role("button", name="Save and test").click()
    main = page.inner_text("main")  # an invalid setting: not saved, said in words, the rest kept
    assert "Not saved" in main and "unknown time zone 'Mars/Olympus'" in main, main
    assert page.input_value('[name="name"]') == "acme-houzz"
    assert page.input_value('[name="credentials.token"]') == ""  # secrets are never sent back
    page.fill('[name="settings.houzz_timezone"]', "UTC")
    page.fill('[name="credentials.app_id"]', HOUZZ_ACCOUNT["app_name"])
    page.fill('[name="credentials.username"]', HOUZZ_ACCOUNT["user_name"])
    page.fill('[name="credentials.token"]', "not-the-token")
    page.get_by_role("button", name="Save and test").click()
    main = page.inner_text("main")
    assert "Test failed" in main and "Application Token" in main, main

    # Fix it: the stored secrets are not shown, only "set"; a new token replaces the wrong one.
    page.get_by_role("link", name="Edit").click()
    assert page.input_value('[name="credentials.token"]') == ""
    assert "set" in page.inner_text("#credentials-token-help")
    assert "not-the-token" not in page.content()
    page.fill('[name="credentials.token"]', HOUZZ_ACCOUNT["token"])
    page.screenshot(path=str(shots / "connection-form.png"), full_page=True)
    page.get_by_role("button", name="Save and test").click()
    assert "Test passed: connected to Houzz" in page.inner_text("main"), page.inner_text("main")
    with app.hub.db.connect() as conn:
        stored = app.hub.connection(conn, "acme-houzz")
    assert stored.settings == {}  # the defaults (load New and In Production, Process, Charge) are not copied
    assert stored.rate_limit == {"calls": 50, "period": 1.0}
    assert app.hub.box().open(stored.credentials_enc)["token"] == HOUZZ_ACCOUNT["token"]

    # Orders arrive from the sandbox; the one with the old SKU is in error, with the fix to make.
    wait_for_text(page, base + "/orders", "3 order(s) match")
    wait_for_text(page, base + "/orders?status=error", f"{OLD_SKU} is unknown to TradeGecko")
    wait_for_text(page, base + "/orders?status=at_wms", "2 order(s) match")
    page.goto(base + "/orders")
    page.screenshot(path=str(shots / "orders.png"), full_page=True)
    page.goto(base + "/errors")
    assert f"1 order: SKU {OLD_SKU} is unknown to TradeGecko" in page.inner_text("main")
    page.screenshot(path=str(shots / "error-queue.png"), full_page=True)

    page.goto(base + "/orders?status=error")
    page.locator("table.orders tbody a").first.click()
    assert "Problem" in page.inner_text("main") and "add an alias" in page.inner_text("#problem-h + p + p")
    page.screenshot(path=str(shots / "order-detail.png"), full_page=True)
    order_url = page.url
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(shots / "phone-order-detail.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # The alias, from the order's own link; saving it retries the order, which then reaches TradeGecko.
    page.get_by_role("link", name=f"Add an alias for {OLD_SKU}").click()
    assert page.input_value("#alias") == OLD_SKU
    page.fill("#sku", "LP-BRS-03")
    page.get_by_role("button", name="Save alias").click()
    assert "1 order(s) in error with HZ-LAMP-OLD will be retried" in page.inner_text("main")
    page.screenshot(path=str(shots / "mappings.png"), full_page=True)
    assert unlabelled(page) == []
    wait_for_text(page, order_url, re.compile(r"Order created in acme-tradegecko as \S+"))
    assert page.inner_text(".head .status") == "at_wms"
    assert "Problem" not in page.inner_text("main")

    with app.hub.db.connect() as conn:
        statuses = dict(conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status)).all())
    assert statuses == dict.fromkeys(houzz_ids, "at_wms")

    # The other main pages, with the world this test built.
    wait_for_text(page, base + "/inventory", "CH-OAK-01")
    wait_for_text(page, base + "/inventory", re.compile(r"acme-houzz: \d+"))
    page.screenshot(path=str(shots / "inventory.png"), full_page=True)
    page.goto(base + "/connections")
    page.screenshot(path=str(shots / "connections.png"), full_page=True)
    page.goto(base + "/")
    assert "Runner health" in page.inner_text("main")
    page.screenshot(path=str(shots / "overview.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(shots / "phone-overview.png"), full_page=True)
    page.close()
