"""The TradeGecko connector against its sandbox over HTTP: delivery, shipments, stock, cancel, auth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tg_support import TG, delivery

from orderbridge.connectors.base import Window
from orderbridge.connectors.errors import AuthError, DataError
from orderbridge.connectors.tradegecko.connector import TradeGeckoConnector
from orderbridge.domain.models import Address, Shipment


def window(since: datetime | None = None) -> Window:
    return Window(since=since, until=datetime.now(UTC) + timedelta(seconds=5))


async def all_shipments(conn: TradeGeckoConnector, since: datetime | None = None) -> list[Shipment]:
    return [s async for s in conn.shipments(window(since))]


# ------------------------------------------------------------------------------- delivery


def test_create_order_maps_customer_lines_and_reference(stocked: TG) -> None:
    req = delivery("R100", [("SKU-1", 2), ("SKU-2", 1)])
    oid = stocked.run(lambda c: c.create_order(req, "key-R100"))
    [order] = stocked.orders("R100")
    assert str(order["id"]) == oid
    assert order["status"] == "active"
    assert order["issued_at"] == "2026-03-04"
    assert order["stock_location_id"] == stocked.location
    assert "Order number: HOUZZ-R100-0001" in order["notes"]
    assert order["tags"] == ["houzz"]
    product = [ln for ln in order["order_line_items"] if not ln["freeform"]]
    assert [(ln["quantity"], ln["price"]) for ln in product] == [("2.0", "10.5"), ("1.0", "10.5")]
    [shipping] = [ln for ln in order["order_line_items"] if ln["freeform"]]
    assert shipping["line_type"] == "shipping" and shipping["label"] == "UPS Ground" and shipping["price"] == "5.0"
    company = stocked.api.get(f"/companies/{order['company_id']}").json()["company"]
    assert company["company_type"] == "consumer" and company["email"] == "ada@example.com"
    address = stocked.api.get(f"/addresses/{order['shipping_address_id']}").json()["address"]
    assert (address["address1"], address["zip_code"], address["first_name"]) == ("1 Main St", "62701", "Ada")
    assert order["billing_address_id"] == order["shipping_address_id"]


def test_company_and_addresses_are_reused(stocked: TG) -> None:
    async def scenario(c: TradeGeckoConnector) -> None:
        await c.create_order(delivery("A1"), "k-A1")
        await c.create_order(delivery("A2"), "k-A2")  # same buyer, same address
        await c.create_order(delivery("A3", street="9 Elm St"), "k-A3")  # same buyer, new address
        billing = Address(name="Ada Lovelace", address1="5 Bill Rd", city="Springfield", country="US")
        await c.create_order(delivery("A4", bill_to=billing), "k-A4")

    stocked.run(scenario)
    counts = stocked.counts()
    assert counts["total"] == 4 and counts["companies"] == 1
    assert counts["addresses"] == 3  # 1 Main St, 9 Elm St, 5 Bill Rd
    orders = {o["reference_number"]: o for o in stocked.orders()}
    assert orders["A1"]["shipping_address_id"] == orders["A2"]["shipping_address_id"]
    assert orders["A3"]["shipping_address_id"] != orders["A1"]["shipping_address_id"]
    assert orders["A4"]["billing_address_id"] != orders["A4"]["shipping_address_id"]
    assert orders["A4"]["shipping_address_id"] == orders["A1"]["shipping_address_id"]


def test_other_buyer_gets_own_company(stocked: TG) -> None:
    async def scenario(c: TradeGeckoConnector) -> None:
        await c.create_order(delivery("B1"), "k-B1")
        await c.create_order(delivery("B2", email="", name="Grace Hopper"), "k-B2")
        await c.create_order(delivery("B3", email="", name="Grace Hopper"), "k-B3")

    stocked.run(scenario)
    assert stocked.counts()["companies"] == 2  # found by email, then by the company code we set


def test_unknown_sku_is_a_data_error_naming_it(stocked: TG) -> None:
    with pytest.raises(DataError) as err:
        stocked.run(lambda c: c.create_order(delivery("U1", [("SKU-1", 1), ("ABC-1", 1)]), "k-U1"))
    assert err.value.message == "SKU ABC-1 is unknown to TradeGecko"
    assert err.value.fix == "add an alias or create the product"
    assert stocked.counts()["total"] == 0


def test_ambiguous_sku_is_a_data_error_naming_it(stocked: TG) -> None:
    stocked.variants({"sku": "SKU-1", "name": "Walnut chair (old)"})
    with pytest.raises(DataError) as err:
        stocked.run(lambda c: c.create_order(delivery("AMB"), "k-AMB"))
    assert "SKU-1" in err.value.message and "several" in err.value.message
    assert stocked.counts()["total"] == 0


def test_archived_duplicate_does_not_make_a_sku_ambiguous(stocked: TG) -> None:
    stocked.variants({"sku": "SKU-1", "name": "Walnut chair (old)", "status": "archived"})
    stocked.run(lambda c: c.create_order(delivery("ARC"), "k-ARC"))
    assert stocked.counts()["total"] == 1


def test_same_idempotency_key_twice_creates_one_order_and_lookup_finds_it(stocked: TG) -> None:
    req = delivery("IDEM")

    async def scenario(c: TradeGeckoConnector) -> tuple[str, str, str | None, str | None]:
        first = await c.create_order(req, "same-key")
        second = await c.create_order(req, "same-key")
        return first, second, await c.find_order(req), await c.find_order(delivery("NOPE"))

    first, second, found, missing = stocked.run(scenario)
    assert first == second == found
    assert missing is None
    assert stocked.counts()["by_reference_number"] == {"IDEM": 1}


def test_status_location_and_order_number_settings(stocked: TG) -> None:
    [second] = stocked.locations("Overflow")
    stocked.post(f"/accounts/{stocked.aid}/stock", [{"sku": "SKU-1", "location_id": second, "stock_on_hand": 5}])
    settings = {"order_status": "finalized", "stock_location_id": second, "order_number_field": "order_number",
                "ship_method_field": "notes", "tags": ["marketplace"]}
    stocked.run(lambda c: c.create_order(delivery("S1"), "k-S1"), settings=settings)
    [order] = stocked.orders("S1")
    assert order["status"] == "finalized"
    assert order["stock_location_id"] == second
    assert order["order_number"] == "HOUZZ-S1-0001"
    assert order["notes"] == "Ship method: UPS Ground"
    assert order["tags"] == ["marketplace", "houzz"]
    [shipping] = [ln for ln in order["order_line_items"] if ln["freeform"]]
    assert shipping["label"] == "Shipping"
    assert stocked.stock("SKU-1")[second]["committed"] == "2.0"
    assert stocked.stock("SKU-1")[stocked.location]["committed"] == "0.0"


def test_fixed_customer_company_setting(stocked: TG) -> None:
    [company] = stocked.post(f"/accounts/{stocked.aid}/companies", [{"name": "Houzz", "company_type": "business"}])
    stocked.run(lambda c: c.create_order(delivery("F1"), "k-F1"), settings={"customer_company_id": company["id"]})
    [order] = stocked.orders("F1")
    assert order["company_id"] == company["id"]
    assert stocked.counts()["companies"] == 1


def test_validation_error_from_the_api_is_a_data_error(stocked: TG) -> None:
    stocked.settings(reject_duplicate_order_numbers=True)
    settings = {"order_number_field": "order_number"}
    stocked.run(lambda c: c.create_order(delivery("D1"), "k-D1"), settings=settings)
    with pytest.raises(DataError) as err:
        stocked.run(lambda c: c.create_order(delivery("D1"), "k-D1-again"), settings=settings)
    assert "order_number has already been taken" in err.value.message


def test_quickbooks_commerce_type_shares_the_implementation(stocked: TG) -> None:
    with pytest.raises(DataError) as err:
        stocked.run(lambda c: c.create_order(delivery("Q1", [("NOPE", 1)]), "k-Q1"), type_name="quickbooks_commerce")
    assert err.value.message == "SKU NOPE is unknown to QuickBooks Commerce"


# ------------------------------------------------------------------------------ shipments


def test_shipments_multi_package_and_partial(stocked: TG) -> None:
    stocked.run(lambda c: c.create_order(delivery("SH1", [("SKU-1", 3), ("SKU-2", 1)]), "k-SH1"))
    stocked.run(lambda c: c.create_order(delivery("SH2", [("SKU-1", 1)]), "k-SH2"))
    stocked.ship("SH1", [
        {"lines": [{"sku": "SKU-1", "quantity": 2}], "tracking_number": "1Z001", "tracking_company": "UPS",
         "service": "Ground"},
        {"lines": [{"sku": "SKU-2", "quantity": 1}], "tracking_number": "1Z002", "tracking_company": "UPS",
         "service": "Ground"},
    ])
    [order] = stocked.orders("SH1")
    assert order["fulfillment_status"] == "partial" and order["status"] == "finalized"
    shipments = stocked.run(all_shipments)
    assert [s.order_ref for s in shipments] == ["SH1", "SH1"]
    first, second = shipments
    assert first.carrier == "UPS" and first.service == "Ground" and first.tracking_numbers == ["1Z001"]
    assert first.quantities() == {"SKU-1": 2} and second.quantities() == {"SKU-2": 1}
    assert first.backend_order_id == str(order["id"])
    assert first.shipped_at is not None and first.shipped_at.tzinfo is not None
    assert first.packages[0].tracking_number == "1Z001"

    stocked.ship("SH1", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "tracking_number": "1Z003, 1Z004",
                          "tracking_company": "FedEx"}])
    assert stocked.orders("SH1")[0]["status"] == "fulfilled"
    later = stocked.run(all_shipments)
    assert len(later) == 3
    assert later[2].tracking_numbers == ["1Z003", "1Z004"] and len(later[2].packages) == 2
    assert later[2].quantities() == {"SKU-1": 1}


def test_shipments_window_and_packed_ones(stocked: TG) -> None:
    stocked.run(lambda c: c.create_order(delivery("W1"), "k-W1"))
    stocked.ship("W1", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "status": "packed"}])
    assert stocked.run(all_shipments) == []  # packed is not shipped yet
    cut = datetime.now(UTC)
    stocked.ship("W1", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "tracking_number": "T-2"}])
    assert [s.tracking_numbers for s in stocked.run(lambda c: all_shipments(c, cut))] == [["T-2"]]
    assert stocked.run(lambda c: all_shipments(c, datetime.now(UTC) + timedelta(seconds=1))) == []


def test_shipments_page_through_every_fulfillment(stocked: TG) -> None:
    stocked.variants({"sku": "BULK", "stock": {str(stocked.location): 1000}})

    async def create(c: TradeGeckoConnector) -> None:
        for n in range(3):
            await c.create_order(delivery(f"P{n}", [("BULK", 300)]), f"k-P{n}")

    stocked.run(create)
    for n in range(3):
        stocked.ship(f"P{n}", [{"lines": [{"sku": "BULK", "quantity": 1}], "tracking_number": f"T{n}-{i}"}
                               for i in range(90)])
    mark = stocked.mark()
    shipments = stocked.run(all_shipments)
    assert len(shipments) == 270 and len({s.external_id for s in shipments}) == 270
    assert {s.order_ref for s in shipments} == {"P0", "P1", "P2"}
    pages = [c for c in stocked.calls(mark) if c["path"] == "/fulfillments" and "page=2" in c["query"]]
    assert pages, "the second page was read"


def test_a_scheduled_poll_passes_over_recorded_shipments_without_mapping_them(
        stocked: TG, monkeypatch: pytest.MonkeyPatch) -> None:
    from orderbridge.connectors.tradegecko import mapping

    stocked.run(lambda c: c.create_order(delivery("RS1"), "k-RS1"))
    stocked.ship("RS1", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "tracking_number": "T-1"}])
    mapped: list[Any] = []
    real = mapping.map_fulfillment
    monkeypatch.setattr(mapping, "map_fulfillment", lambda ful, *a: mapped.append(ful["id"]) or real(ful, *a))

    ledger: set[str] = set()  # what the engine's look-up finds recorded
    asked_about: list[str] = []

    async def recorded(ids: list[str]) -> set[str]:
        asked_about.extend(ids)
        return ledger & set(ids)

    async def polls(c: TradeGeckoConnector) -> tuple[list[str], list[str], list[str], list[str]]:
        scheduled = Window(since=None, until=datetime.now(UTC) + timedelta(seconds=5), skip_stored=True,
                           recorded=recorded)
        first = [s.external_id async for s in c.shipments(scheduled)]
        ledger.update(first)  # what the engine's transaction records
        mapped.clear()
        again = [s.external_id async for s in c.shipments(scheduled)]
        asked = [s.external_id async for s in c.shipments(window())]  # a re-read asked for: everything
        stocked.ship("RS1", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "tracking_number": "T-2"}])
        newer = [s.external_id async for s in c.shipments(scheduled)]
        return first, again, asked, newer

    first, again, asked, newer = stocked.run(polls)
    assert len(first) == 1 and again == [] and asked == first
    assert len(newer) == 1 and newer != first, "a shipment made since is read"
    assert [str(i) for i in mapped] == first + newer, "the recorded one was mapped only when asked for"
    assert asked_about == [*first, *first, *first, *newer], "each scheduled page looked up once, a re-read never"


def test_order_references_kept_are_bounded_and_an_older_one_is_read(
        stocked: TG, monkeypatch: pytest.MonkeyPatch) -> None:
    from orderbridge.connectors.tradegecko import connector as tg_connector

    monkeypatch.setattr(tg_connector, "ORDER_REFS_KEPT", 2)

    async def flow(c: TradeGeckoConnector) -> tuple[int, list[Shipment]]:
        for ref in ("OLD", "MID", "NEW"):
            await c.create_order(delivery(ref), f"k-{ref}")
        kept = len(c._order_refs)
        stocked.ship("OLD", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "tracking_number": "T-OLD"}])
        return kept, await all_shipments(c)

    mark = stocked.mark()
    kept, shipments = stocked.run(flow)
    assert kept == 2
    assert [s.order_ref for s in shipments] == ["OLD"], "the reference no longer kept is read from TradeGecko"
    assert any(c["path"] == "/orders" and c["method"] == "GET" for c in stocked.calls(mark))


# ---------------------------------------------------------------------------------- stock


def test_stock_levels_per_location_with_counted_locations(stocked: TG) -> None:
    [east] = stocked.locations("East")
    stocked.post(f"/accounts/{stocked.aid}/stock", [{"sku": "SKU-1", "location_id": east, "stock_on_hand": 7}])
    stocked.variants({"sku": "UNTRACKED", "manage_stock": False}, {"name": "no sku"})
    stocked.run(lambda c: c.create_order(delivery("ST1", [("SKU-1", 3)]), "k-ST1"))

    def levels(settings: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, int]]:
        got = stocked.run(lambda c: c.stock_levels(), settings=settings)
        return {(x.sku, x.warehouse): (x.on_hand, x.committed, x.available) for x in got}

    everything = levels({})
    assert everything[("SKU-1", "Main Warehouse")] == (10, 3, 7)
    assert everything[("SKU-1", "East")] == (7, 0, 7)
    assert everything[("SKU-2", "East")] == (0, 0, 0)
    assert not any(sku == "UNTRACKED" for sku, _ in everything)
    only_east = levels({"inventory_location_ids": [east], "untracked_stock_quantity": 50})
    assert set(only_east) == {("SKU-1", "East"), ("SKU-2", "East"), ("UNTRACKED", "untracked")}
    assert only_east[("UNTRACKED", "untracked")][2] == 50


def test_unknown_inventory_location_is_a_config_error(stocked: TG) -> None:
    from orderbridge.connectors.errors import ConfigError

    with pytest.raises(ConfigError):
        stocked.run(lambda c: c.stock_levels(), settings={"inventory_location_ids": [999999]})


def test_stock_committed_and_released_as_documented(stocked: TG) -> None:
    loc = stocked.location
    stocked.run(lambda c: c.create_order(delivery("C1", [("SKU-1", 4)]), "k-C1"))
    row = stocked.stock("SKU-1")[loc]
    assert (row["stock_on_hand"], row["committed"], row["available"]) == ("10.0", "4.0", "6.0")
    stocked.ship("C1", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "tracking_number": "X"}])
    row = stocked.stock("SKU-1")[loc]
    assert (row["stock_on_hand"], row["committed"], row["available"]) == ("9.0", "3.0", "6.0")
    oid = stocked.run(lambda c: c.find_order(delivery("C1")))
    result = stocked.run(lambda c: c.cancel_order(str(oid), delivery("C1")))
    assert result.too_late  # partly shipped: not voided
    stocked.run(lambda c: c.create_order(delivery("C2", [("SKU-1", 2)]), "k-C2"),
                settings={"order_status": "finalized"})
    stocked.ship("C2", [{"lines": [{"sku": "SKU-1", "quantity": 1}], "status": "packed"}])
    row = stocked.stock("SKU-1")[loc]
    assert (row["stock_on_hand"], row["committed"]) == ("8.0", "4.0")
    oid2 = stocked.run(lambda c: c.find_order(delivery("C2")))
    assert stocked.run(lambda c: c.cancel_order(str(oid2), delivery("C2"))).canceled
    row = stocked.stock("SKU-1")[loc]
    assert (row["stock_on_hand"], row["committed"]) == ("9.0", "3.0")  # packed units back, C2 released


# --------------------------------------------------------------------------------- cancel


def test_cancel_voids_and_reports_too_late(stocked: TG) -> None:
    async def scenario(c: TradeGeckoConnector) -> tuple[Any, Any, Any]:
        a = await c.create_order(delivery("V1"), "k-V1")
        b = await c.create_order(delivery("V2"), "k-V2")
        first = await c.cancel_order(a, delivery("V1"))
        again = await c.cancel_order(a, delivery("V1"))
        stocked.ship("V2", [{}])
        late = await c.cancel_order(b, delivery("V2"))
        return first, again, late

    first, again, late = stocked.run(scenario)
    assert first.canceled and not first.too_late
    assert again.canceled and "already void" in again.note
    assert not late.canceled and late.too_late and "already shipped" in late.note
    assert stocked.orders("V1")[0]["status"] == "void"
    assert stocked.orders("V2")[0]["status"] == "fulfilled"
    assert stocked.stock("SKU-1")[stocked.location]["committed"] == "0.0"


def test_cancel_of_missing_order_is_flagged(stocked: TG) -> None:
    result = stocked.run(lambda c: c.cancel_order("987654", delivery("X")))
    assert not result.canceled and not result.too_late and "987654" in result.note


# ----------------------------------------------------------------------------------- auth


def test_check_ok_and_bad_token(stocked: TG) -> None:
    ok = stocked.run(lambda c: c.check())
    assert ok.ok and "Test store" in ok.message
    bad = stocked.run(lambda c: c.check(), credentials={"access_token": "wrong-token"})
    assert not bad.ok and "refused the access token" in bad.message
    with pytest.raises(AuthError):
        stocked.run(lambda c: c.create_order(delivery("BAD"), "k-BAD"), credentials={"access_token": "wrong-token"})


def test_check_reports_unknown_location(stocked: TG) -> None:
    result = stocked.run(lambda c: c.check(), settings={"stock_location_id": 424242})
    assert not result.ok and "424242" in result.message


def oauth_account(tg_server_url: str) -> TG:
    return TG(tg_server_url, {"name": "OAuth store", "oauth": {"client_id": f"app-{id(object())}"}})


def test_expired_token_is_refreshed_with_rotation(tg_server: Any) -> None:
    acct = oauth_account(tg_server.url)
    acct.variants({"sku": "SKU-1", "stock": {str(acct.location): 5}})
    oauth = acct.created["oauth"]
    creds = {k: oauth[k] for k in ("access_token", "refresh_token", "client_id", "client_secret")}
    acct.post("/tokens/expire", {"access_token": oauth["access_token"]})

    async def scenario(c: TradeGeckoConnector) -> tuple[Any, Any, Any]:
        await c.create_order(delivery("O1"), "k-O1")
        rotated = c.rotated_credentials()
        return rotated, c.rotated_credentials(), c.current_credentials()

    rotated, second, current = acct.run(scenario, credentials=creds)
    assert rotated is not None and second is None  # handed to the engine once per rotation
    assert rotated["refresh_token"] != oauth["refresh_token"]
    assert rotated["access_token"] != oauth["access_token"]
    assert current == rotated
    assert acct.counts()["total"] == 1
    # The new access token works; the old refresh token was spent by the rotation.
    assert httpx.get(acct.url + "/accounts/current",
                     headers={"Authorization": f"Bearer {rotated['access_token']}"}).status_code == 200
    reused = httpx.post(acct.url + "/oauth/token", json={
        "grant_type": "refresh_token", "refresh_token": oauth["refresh_token"], "client_id": oauth["client_id"],
        "client_secret": oauth["client_secret"]})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_request"


def test_spent_refresh_token_is_an_auth_error(tg_server: Any) -> None:
    acct = oauth_account(tg_server.url)
    oauth = acct.created["oauth"]
    creds = {k: oauth[k] for k in ("access_token", "refresh_token", "client_id", "client_secret")}
    acct.post("/tokens/expire", {"access_token": oauth["access_token"], "refresh_token": oauth["refresh_token"]})
    with pytest.raises(AuthError) as err:
        acct.run(lambda c: c.find_order(delivery("Z")), credentials=creds)
    assert "refresh" in err.value.message
    result = acct.run(lambda c: c.check(), credentials=creds)
    assert not result.ok and "refresh" in result.message


def test_concurrent_401s_share_one_refresh(tg_server: Any) -> None:
    import asyncio

    acct = oauth_account(tg_server.url)
    oauth = acct.created["oauth"]
    creds = {k: oauth[k] for k in ("access_token", "refresh_token", "client_id", "client_secret")}
    acct.post("/tokens/expire", {"access_token": oauth["access_token"]})
    mark = acct.mark()

    async def scenario(c: TradeGeckoConnector) -> list[str | None]:
        return list(await asyncio.gather(*(c.find_order(delivery(f"N{i}")) for i in range(5))))

    assert acct.run(scenario, credentials=creds) == [None] * 5
    token_calls = [c for c in acct.calls(mark) if c["path"] == "/oauth/token"]
    assert [c["status"] for c in token_calls] == [200]


def test_credentials_need_a_token_or_a_full_oauth_client(stocked: TG) -> None:
    from orderbridge.connectors.errors import ConfigError

    with pytest.raises(ConfigError):
        stocked.connector(credentials={"access_token": ""})
    with pytest.raises(ConfigError):
        stocked.connector(credentials={"access_token": "x", "refresh_token": "only-this"})


def test_rate_spec_and_account_key() -> None:
    from orderbridge.connectors.http import RateSpec
    from orderbridge.connectors.tradegecko.connector import QuickBooksCommerceConnector, TradeGeckoCredentials

    url = "https://api.tradegecko.com"
    token = TradeGeckoCredentials(access_token="secret-token-1")
    assert TradeGeckoConnector.rate_spec(token) == RateSpec(300, 300.0)
    key = TradeGeckoConnector.account_key(token, url)
    assert "secret-token-1" not in key
    assert key == QuickBooksCommerceConnector.account_key(token, url)  # one API, one budget
    assert key != TradeGeckoConnector.account_key(TradeGeckoCredentials(access_token="secret-token-2"), url)
    oauth = dict(refresh_token="r", client_id="app-1", client_secret="s")
    before = TradeGeckoConnector.account_key(TradeGeckoCredentials(access_token="a1", **oauth), url)
    after = TradeGeckoConnector.account_key(TradeGeckoCredentials(access_token="a2", **oauth), url)
    assert before == after  # the budget survives token rotation
