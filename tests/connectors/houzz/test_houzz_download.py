"""The Houzz connectors' reads against the sandbox: check, download, fetch_order, survey."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from houzz_support import Admin, now, opened
from tests.support.sandbox_fixtures import collect

from orderbridge.connectors.base import DownloadedOrder, SkippedOrder, Window
from orderbridge.connectors.houzz.sandbox import create_app
from orderbridge.connectors.registry import build_connector
from orderbridge.connectors.sandbox_kit import ServedApp


def recent() -> Window:
    return Window(since=now() - timedelta(hours=1), until=now())


def by_id(items: list[Any]) -> dict[str, Any]:
    return {i.external_id: i for i in items}


def test_check_accepts_good_credentials(url: str, admin: Admin) -> None:
    acc = admin.account()

    async def go() -> None:
        async with opened(url, acc) as c:
            result = await c.check()
            assert result.ok and "user-" in result.message

    asyncio.run(go())


@pytest.mark.parametrize(("field", "words"), [
    ("app_id", "Application ID"), ("username", "Username"), ("token", "Application Token"),
])
def test_check_names_the_wrong_credential(url: str, admin: Admin, field: str, words: str) -> None:
    acc = {**admin.account(), field: "not-the-right-one"}

    async def go() -> None:
        async with opened(url, acc) as c:
            result = await c.check()
            assert not result.ok and words in result.message, result.message

    asyncio.run(go())


@pytest.mark.parametrize(("scopes", "words"), [
    (["inventory"], "List and process orders"), (["orders"], "Update product inventory"),
])
def test_check_names_the_missing_permission(url: str, admin: Admin, scopes: list[str], words: str) -> None:
    acc = admin.account(scopes=scopes)

    async def go() -> None:
        async with opened(url, acc) as c:
            result = await c.check()
            assert not result.ok and words in result.message and "Settings > API" in result.message

    asyncio.run(go())


def test_check_understands_http_401_answers() -> None:
    with ServedApp(create_app({"auth_failure_status": 401, "accounts": []})) as s:
        acc = {**Admin(s.url).account(), "token": "wrong"}

        async def go() -> None:
            async with opened(s.url, acc) as c:
                result = await c.check()
                assert not result.ok and "Application Token" in result.message

        asyncio.run(go())


def test_credentials_and_settings_are_validated() -> None:
    from orderbridge.connectors.errors import ConfigError

    creds = {"app_id": "app", "username": "user", "token": "secret-token-123"}
    with pytest.raises(ConfigError, match="token"):
        build_connector("houzz_seller", name="x", settings={}, credentials={"app_id": "a", "username": "b"},
                        base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="time zone"):
        build_connector("houzz_seller", name="x", settings={"houzz_timezone": "Mars/Olympus"}, credentials=creds)
    with pytest.raises(ConfigError, match="order_status"):
        build_connector("houzz_vendor", name="x", settings={"order_status": "Charged"}, credentials=creds)
    seller = build_connector("houzz_seller", name="x", settings={}, credentials=creds)
    assert seller.ctx.base_url == "https://api.houzz.com" and seller.sandbox_name == "houzz"
    assert seller.settings.order_status == "New and In Production" and seller.settings.mark_charged
    assert seller.settings.carrier_map["FedEx"] == "FedEx" and seller.settings.tracking_numbers == "first"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_download_pages_to_the_end_in_both_formats(fmt: str) -> None:
    with ServedApp(create_app({"max_page_size": 7, "accounts": [], "rate_limit": False})) as s:
        admin = Admin(s.url)
        acc = admin.account()
        ids = set(admin.bulk(acc["acct"], 25))

        async def go() -> list[Any]:
            async with opened(s.url, acc, {"read_format": fmt}) as c:
                return await collect(c.download(Window(since=None, until=now())))

        items = asyncio.run(go())
        assert [type(i) for i in items] == [DownloadedOrder] * 25
        assert {i.external_id for i in items} == ids and all(i.order for i in items)
        reads = [c for c in admin.calls() if "getOrders" in c["query"]]
        assert len(reads) == 4  # 7 + 7 + 7 + 4: the short, capped pages did not stop the paging


def test_json_and_xml_reads_map_to_the_same_orders(url: str, admin: Admin) -> None:
    acc = admin.account()
    admin.order(acc["acct"], Comments="Gift — please wrap", CustomerName="Søren Ødegård")
    admin.bulk(acc["acct"], 5)

    async def go(fmt: str) -> list[dict[str, Any]]:
        async with opened(url, acc, {"read_format": fmt}) as c:
            items = await collect(c.download(recent()))
            return [i.order.model_dump() for i in sorted(items, key=lambda i: i.external_id)]

    as_json, as_xml = asyncio.run(go("json")), asyncio.run(go("xml"))
    assert len(as_json) == 6 and as_json == as_xml


def test_seller_default_imports_open_orders_and_skips_the_rest(url: str, admin: Admin) -> None:
    acc = admin.account()
    a = acc["acct"]
    ids = {s: admin.order(a, Status=s) for s in ("Placed", "InProduction", "Charged", "FailedToCharge", "Shipped")}
    ids["Canceled"] = admin.order(a)
    admin.cancel(a, ids["Canceled"], by="buyer")

    async def go() -> dict[str, Any]:
        async with opened(url, acc) as c:
            return by_id(await collect(c.download(recent())))

    got = asyncio.run(go())
    for status in ("Placed", "InProduction", "Charged"):
        assert isinstance(got[ids[status]], DownloadedOrder) and got[ids[status]].order, status
    assert got[ids["Charged"]].order.paid and not got[ids["Placed"]].order.paid
    failed, shipped, canceled = got[ids["FailedToCharge"]], got[ids["Shipped"]], got[ids["Canceled"]]
    assert isinstance(failed, SkippedOrder) and not failed.final and "could not charge" in failed.reason
    assert isinstance(shipped, SkippedOrder) and shipped.final and "already shipped" in shipped.reason
    assert isinstance(canceled, SkippedOrder) and canceled.final and "cancelled" in canceled.reason


@pytest.mark.parametrize(("order_status", "imported", "skipped"), [
    ("In Production", {"InProduction", "Charged"}, {"Placed"}),
    ("Charged", {"Charged"}, {"Placed", "InProduction"}),
])
def test_seller_order_status_setting(url: str, admin: Admin, order_status: str, imported: set[str],
                                     skipped: set[str]) -> None:
    acc = admin.account()
    ids = {s: admin.order(acc["acct"], Status=s) for s in ("Placed", "InProduction", "Charged")}
    settings = {"order_status": order_status, "mark_processed": False, "mark_charged": order_status != "Charged"}

    async def go() -> dict[str, Any]:
        async with opened(url, acc, settings) as c:
            return by_id(await collect(c.download(recent())))

    got = asyncio.run(go())
    assert {s for s in ids if isinstance(got[ids[s]], DownloadedOrder)} == imported
    for s in skipped:
        item = got[ids[s]]
        assert isinstance(item, SkippedOrder) and f"waits for {order_status}" in item.reason and not item.final


def test_vendor_connection_loads_charged_vendor_orders(url: str, admin: Admin) -> None:
    acc = admin.account("vendor")
    ids = admin.bulk(acc["acct"], 3)
    odd = admin.order(acc["acct"], Status="InProduction", OrderItems=[{"SKU": "V", "Quantity": "1", "Cost": "9"}])

    async def go() -> dict[str, Any]:
        async with opened(url, acc, kind="houzz_vendor") as c:
            items = by_id(await collect(c.download(recent())))
            assert c.workflow_steps(items[ids[0]].order) == [] and not c.capabilities.workflow
            return items

    got = asyncio.run(go())
    assert all(isinstance(got[i], DownloadedOrder) and got[i].order.extra["program"] == "vendor" for i in ids)
    assert isinstance(got[odd], SkippedOrder) and "Charged orders only" in got[odd].reason


@pytest.mark.parametrize(("program", "kind", "words"), [
    ("vendor", "houzz_seller", "looks like a Houzz Vendor order"),
    ("seller", "houzz_vendor", "looks like a Houzz Seller order"),
])
def test_program_mismatch_is_named(url: str, admin: Admin, program: str, kind: str, words: str) -> None:
    acc = admin.account(program)
    ids = admin.bulk(acc["acct"], 2, status="Charged")

    async def go() -> dict[str, Any]:
        async with opened(url, acc, kind=kind) as c:
            return by_id(await collect(c.download(recent())))

    got = asyncio.run(go())
    for oid in ids:
        assert isinstance(got[oid], SkippedOrder) and words in got[oid].reason and "connection type" in got[oid].reason


def test_earliest_order_date_and_first_run_window(url: str, admin: Admin) -> None:
    acc = admin.account()
    today = now()
    old = admin.order(acc["acct"], Created=(today - timedelta(days=5)).strftime("%Y-%m-%d %H:%M:%S"))
    fresh = admin.order(acc["acct"], Created=(today - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"))
    ancient = admin.order(acc["acct"], Created=(today - timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S"))
    earliest = (today - timedelta(days=3)).date().isoformat()

    async def go(settings: dict[str, Any]) -> dict[str, Any]:
        async with opened(url, acc, settings) as c:
            return by_id(await collect(c.download(Window(since=None, until=now()))))

    got = asyncio.run(go({"earliest_order_date": earliest}))
    assert isinstance(got[old], SkippedOrder) and got[old].final and "earliest order date" in got[old].reason
    assert isinstance(got[fresh], DownloadedOrder) and ancient not in got  # beyond the 14-day first read
    got = asyncio.run(go({"earliest_order_date": (today - timedelta(days=60)).date().isoformat()}))
    assert isinstance(got[ancient], DownloadedOrder)  # the first read starts at the earliest order date


def test_older_orders_that_became_eligible_are_found(url: str, admin: Admin) -> None:
    acc = admin.account()
    created = (now() - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    charged_later = admin.order(acc["acct"], Created=created, Status="Charged")
    still_new = admin.order(acc["acct"], Created=created)
    too_old = admin.order(acc["acct"], Created=(now() - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S"),
                          Status="Charged")
    settings = {"order_status": "Charged", "mark_processed": False, "mark_charged": False}

    async def go() -> dict[str, Any]:
        async with opened(url, acc, settings) as c:
            return by_id(await collect(c.download(recent())))

    got = asyncio.run(go())
    assert isinstance(got[charged_later], DownloadedOrder) and got[charged_later].order
    assert still_new not in got and too_old not in got


def test_malformed_orders_arrive_as_errors(url: str, admin: Admin) -> None:
    acc = admin.account()
    no_address = admin.raw_order(acc["acct"], {"CustomerName": "X", "OrderItems": [{"SKU": "A", "Price": "1"}]})
    bad_qty = admin.order(acc["acct"], OrderItems=[{"SKU": "A", "Quantity": "lots", "Price": "1"}])
    fine = admin.order(acc["acct"])

    async def go() -> dict[str, Any]:
        async with opened(url, acc) as c:
            return by_id(await collect(c.download(recent())))

    got = asyncio.run(go())
    assert got[no_address].order is None and "no ship-to address" in got[no_address].error and got[no_address].fix
    assert got[bad_qty].order is None and "quantity of A" in got[bad_qty].error
    assert got[fine].order is not None and got[fine].raw["OrderId"] == fine


def test_time_zone_applies_to_dates_and_filters(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Created="2026-01-10 10:00:00")
    settings = {"houzz_timezone": "America/Los_Angeles"}

    async def go() -> Any:
        async with opened(url, acc, settings) as c:
            from datetime import UTC, datetime

            until = datetime(2026, 1, 10, 20, 0, tzinfo=UTC)
            items = await collect(c.download(Window(since=datetime(2026, 1, 10, 17, 0, tzinfo=UTC), until=until)))
            return by_id(items)

    got = asyncio.run(go())
    assert got[oid].order.order_date.isoformat() == "2026-01-10T18:00:00+00:00"
    sent = [{k.lower(): v[0] for k, v in parse_qs(c["query"]).items()} for c in admin.calls()]
    assert {"from": "2026-01-10 09:00:00", "to": "2026-01-10 12:00:00"}.items() <= next(
        p for p in reversed(sent) if p.get("status") == "All").items()


def test_fetch_order_and_the_get_order_fallback(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="Charged")

    async def go(base: str, account: dict[str, str]) -> tuple[Any, Any]:
        async with opened(base, account) as c:
            return await c.fetch_order(oid), await c.fetch_order("0000-0000-0000-0000")

    found, missing = asyncio.run(go(url, acc))
    assert isinstance(found, DownloadedOrder) and found.order and missing is None
    with ServedApp(create_app({"get_order_enabled": False, "accounts": [], "seed": 7})) as s:
        other = Admin(s.url)
        acc2 = other.account()
        oid = other.order(acc2["acct"], Status="Charged")
        found, missing = asyncio.run(go(s.url, acc2))
        assert isinstance(found, DownloadedOrder) and found.external_id == oid and missing is None
        assert any("getOrders" in c["query"] for c in other.calls())


def test_survey_explains_every_order(url: str, admin: Admin) -> None:
    acc = admin.account()
    a = acc["acct"]
    eligible = admin.order(a)
    shipped = admin.order(a, Status="Shipped")
    other = admin.raw_order(a, {**_vendor_like(), "Status": "Charged"})
    before = admin.order(a, Created=(now() - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S"))
    settings = {"order_status": "In Production", "mark_processed": False,
                "earliest_order_date": now().date().isoformat()}

    async def go() -> tuple[dict[str, Any], list[Any]]:
        async with opened(url, acc, settings) as c:
            every = by_id(await c.survey(Window(since=now() - timedelta(days=3), until=now())))
            return every, await c.survey(Window(since=now() - timedelta(days=3), until=now()), shipped)

    every, single = asyncio.run(go())
    assert "waits for In Production" in every[eligible].not_eligible_reason
    assert "already shipped" in every[shipped].not_eligible_reason
    assert "connection type" in every[other].not_eligible_reason
    assert "earliest order date" in every[before].not_eligible_reason
    assert [i.external_id for i in single] == [shipped] and single[0].source_status == "Shipped"


def _vendor_like() -> dict[str, Any]:
    return {"CustomerName": "V", "Address": {"Address": "1 A St", "City": "B"},
            "OrderItems": [{"SKU": "V1", "Quantity": "1", "Cost": "10"}]}
