"""Delivering orders into the Holded sandbox: document types, stock, contacts, routes, SKUs, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from holded_support import Admin, connector, deliver, make_order, request

from orderbridge.connectors.errors import AuthError, ConfigError, DataError, NotFound, RateLimited
from orderbridge.connectors.holded.connector import HoldedConnector, HoldedSettings

PRODUCTS = [{"sku": "SKU-1", "name": "Shirt", "price": 10, "stock": 10},
            {"sku": "SKU-2", "name": "Mug", "price": 5, "stock": 4}]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_sales_receipt_moves_stock_at_once_and_is_paid(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    order = make_order([("SKU-1", 2, "10.00"), ("SKU-2", 1, "5.00")], shipping="4.00")
    req = request(order)

    async def scenario() -> tuple[str, str | None, bool]:
        conn = connector(url, key)
        try:
            assert await conn.find_order(req) is None
            doc_id = await conn.create_order(req, "k1")
            return doc_id, await conn.find_order(req), conn.requires_payment(req)
        finally:
            await conn.aclose()

    doc_id, found, needs_payment = run(scenario())
    assert found == doc_id and needs_payment
    [doc] = admin.docs(key, "salesreceipt", ref=req.cust_ref)
    assert doc["id"] == doc_id and doc["docNumber"].startswith("T") and doc["approvedAt"]
    assert doc["status"] == 1 and doc["paymentsPending"] == 0  # paid, as the shop says it is
    assert [p.get("sku") for p in doc["products"]] == ["SKU-1", "SKU-2", ""]  # + the shipping line
    assert doc["total"] == float(order.totals.total)
    assert f"orderbridge ref: {req.cust_ref}" in doc["notes"] and order.cust_po_no in doc["notes"]
    assert admin.units(key, "SKU-1") == 8 and admin.units(key, "SKU-2") == 3
    [contact] = admin.contacts(key)
    assert contact["customId"] == "wix-a:cust-1" and contact["email"] == "ada@example.com"


def test_invoice_moves_stock_and_can_stay_unpaid(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    paid, unpaid = make_order([("SKU-1", 3, "10.00")]), make_order([("SKU-1", 1, "10.00")])

    async def scenario() -> None:
        conn = connector(url, key, {"document_type": "invoice"})
        try:
            await conn.create_order(request(paid), "k1")
            await conn.create_order(request(unpaid, {"mark_paid": False}), "k2")
        finally:
            await conn.aclose()

    run(scenario())
    invoices = {d["notes"].split()[-1]: d for d in admin.docs(key, "invoice")}
    assert invoices[f"W{paid.cust_po_no}"]["status"] == 1
    assert invoices[f"W{unpaid.cust_po_no}"]["status"] == 0
    assert admin.docs(key, "salesreceipt") == []
    assert admin.units(key, "SKU-1") == 6


def test_sales_order_moves_stock_only_when_units_are_sent(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    req = request(make_order([("SKU-1", 2, "10.00")]), {"document_type": "salesorder"})

    async def scenario() -> tuple[str, bool]:
        conn = connector(url, key)
        try:
            return await conn.create_order(req, "k1"), conn.requires_payment(req)
        finally:
            await conn.aclose()

    doc_id, needs_payment = run(scenario())
    assert not needs_payment
    [doc] = admin.docs(key, "salesorder", ref=req.cust_ref)
    assert doc["status"] == 0 and doc["paymentsTotal"] == 0  # sales orders are not paid by us
    assert admin.units(key, "SKU-1") == 10
    admin.send(key, doc_id)
    assert admin.units(key, "SKU-1") == 8


def test_contact_policy_custom_id_reuses_the_contact(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    first = make_order(customer_id="c-77", email="old@example.com")
    second = make_order(customer_id="c-77", email="new@example.com")
    other = make_order(customer_id="c-78", email="x@example.com")

    async def scenario() -> None:
        conn = connector(url, key, {"custom_id_prefix": ""})
        try:
            for order in (first, second, other):
                await conn.create_order(request(order), "k")
        finally:
            await conn.aclose()

    run(scenario())
    contacts = admin.contacts(key)
    assert sorted(c["customId"] for c in contacts) == ["c-77", "c-78"]
    docs = admin.docs(key, "salesreceipt")
    assert len({d["contact"] for d in docs}) == 2


def test_contact_policy_email_matches_a_contact_made_in_holded(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS, contacts=[{"name": "Ada (by hand)", "email": "Ada@Example.com"}])
    known, new1, new2 = (make_order(email=e, customer_id="") for e in
                         ("ada@example.com", "bob@example.com", "BOB@example.com"))

    async def scenario() -> None:
        conn = connector(url, key, {"contact_policy": "email"})
        try:
            for order in (known, new1, new2):
                await conn.create_order(request(order), "k")
        finally:
            await conn.aclose()

    run(scenario())
    contacts = {c["name"]: c for c in admin.contacts(key)}
    assert set(contacts) == {"Ada (by hand)", "Ada Lovelace"}
    by_contact = [d["contact"] for d in admin.docs(key, "salesreceipt")]
    assert by_contact[0] == contacts["Ada (by hand)"]["id"]
    assert by_contact[1] == by_contact[2] == contacts["Ada Lovelace"]["id"]
    assert contacts["Ada Lovelace"]["email"] == "bob@example.com"


def test_contact_policy_tax_id_matches_uppercase(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS, contacts=[{"name": "Acme SL", "code": "B12345678"}])
    orders = [make_order(tax_id="b12345678", email="a@acme.es"), make_order(tax_id="X9999999Z", company="Other SL")]

    async def scenario() -> None:
        conn = connector(url, key, {"contact_policy": "tax_id"})
        try:
            for order in orders:
                await conn.create_order(request(order), "k")
        finally:
            await conn.aclose()

    run(scenario())
    contacts = {c["code"]: c for c in admin.contacts(key)}
    assert set(contacts) == {"B12345678", "X9999999Z"}
    assert contacts["X9999999Z"]["name"] == "Other SL" and contacts["X9999999Z"]["isperson"] == 0
    assert [d["contact"] for d in admin.docs(key, "salesreceipt")] == [
        contacts["B12345678"]["id"], contacts["X9999999Z"]["id"]]


def test_contact_policy_generic_puts_every_order_on_one_contact(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS, contacts=[{"name": "Counter sales"}])
    counter = next(c["id"] for c in admin.contacts(key))

    async def scenario() -> None:
        conn = connector(url, key, {"contact_policy": "generic", "generic_contact_name": "Wix customer"})
        try:
            for n in range(3):
                await conn.create_order(request(make_order(customer_id=f"c{n}", email=f"{n}@x.es")), "k")
            await conn.create_order(request(make_order(), {"generic_contact_id": counter}), "k")
        finally:
            await conn.aclose()

    run(scenario())
    names = sorted(c["name"] for c in admin.contacts(key))
    assert names == ["Counter sales", "Wix customer"]
    generic = next(c["id"] for c in admin.contacts(key) if c["name"] == "Wix customer")
    assert [d["contact"] for d in admin.docs(key, "salesreceipt")] == [generic] * 3 + [counter]


def test_two_stores_with_their_own_routes_into_one_account(admin: Admin, url: str) -> None:
    key = admin.account()
    seeded = admin.seed(key, warehouses=[{"name": "Madrid"}], channels=[{"name": "Wix A"}, {"name": "Wix B"}],
                        series=[{"type": "salesorder", "name": "Wix B", "format": "WB-%%%", "last": 41}],
                        designs=["design-wb"])
    madrid = seeded["warehouses"]["Madrid"]
    admin.seed(key, products=[{"sku": "SKU-1", "name": "Shirt", "stock": {"Main warehouse": 5, "Madrid": 7}}])
    route_a = {"document_type": "salesreceipt", "warehouse_id": madrid, "sales_channel_id": seeded["channels"]["Wix A"]}
    route_b = {"document_type": "salesorder", "sales_channel_id": seeded["channels"]["Wix B"],
               "numbering_series_id": seeded["series"]["Wix B"], "design_id": "design-wb", "contact_policy": "email"}
    a, b = make_order([("SKU-1", 2, "10.00")]), make_order([("SKU-1", 1, "10.00")])

    async def scenario() -> None:
        conn = connector(url, key)
        try:
            await conn.create_order(request(a, route_a, source="wix-a"), "k1")
            await conn.create_order(request(b, route_b, source="wix-b"), "k2")
        finally:
            await conn.aclose()

    run(scenario())
    [receipt] = admin.docs(key, "salesreceipt")
    [order] = admin.docs(key, "salesorder")
    assert receipt["warehouseId"] == madrid and receipt["salesChannelId"] == seeded["channels"]["Wix A"]
    assert order["salesChannelId"] == seeded["channels"]["Wix B"] and order["docNumber"] == "WB-042"
    assert order["designId"] == "design-wb" and order["warehouseId"] == admin.default_warehouse(key)
    assert admin.units(key, "SKU-1", madrid) == 5 and admin.units(key, "SKU-1") == 5
    # store B matches by email: it found store A's contact (same buyer) instead of making another
    assert len(admin.contacts(key)) == 1 and receipt["contact"] == order["contact"]


def test_customer_ids_are_namespaced_per_store(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)

    async def scenario() -> None:
        conn = connector(url, key)
        try:
            await conn.create_order(request(make_order(email="a@x.es"), source="wix-a"), "k1")
            await conn.create_order(request(make_order(email="b@x.es"), source="wix-b"), "k2")
        finally:
            await conn.aclose()

    run(scenario())
    assert sorted(c["customId"] for c in admin.contacts(key)) == ["wix-a:cust-1", "wix-b:cust-1"]


def test_missing_sku_holds_the_order_in_error(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    req = request(make_order([("SKU-1", 1, "10.00"), ("GHOST-9", 1, "3.00")]))

    async def scenario() -> DataError:
        conn = connector(url, key)
        try:
            with pytest.raises(DataError) as caught:
                await conn.create_order(req, "k")
            return caught.value
        finally:
            await conn.aclose()

    err = run(scenario())
    assert "GHOST-9" in err.message and "GHOST-9" in err.fix and "free_line" in err.fix
    assert admin.docs(key) == [] and admin.units(key, "SKU-1") == 10


def test_missing_sku_as_free_line_with_a_warning(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    req = request(make_order([("SKU-1", 1, "10.00"), ("GHOST-9", 2, "3.00")]), {"missing_sku": "free_line"})

    async def scenario() -> str:
        conn = connector(url, key)
        try:
            await conn.create_order(req, "k")
            return conn.take_delivery_note(req.cust_ref)
        finally:
            await conn.aclose()

    note = run(scenario())
    assert "GHOST-9" in note and "free line" in note
    [doc] = admin.docs(key, "salesreceipt", ref=req.cust_ref)
    free = doc["products"][1]
    assert free["sku"] == "" and "productId" not in free and free["desc"] == "SKU GHOST-9" and free["units"] == 2
    assert admin.units(key, "SKU-1") == 9


def test_a_product_created_in_holded_is_found_without_waiting_for_the_cache(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    later = request(make_order([("SKU-NEW", 1, "10.00")]))

    async def scenario() -> None:
        conn = connector(url, key)
        try:
            await conn.create_order(request(make_order()), "k1")  # loads the product list
            conn._skus_at -= 10  # the list is a few seconds old when the new SKU turns up
            admin.seed(key, products=[{"sku": "SKU-NEW", "name": "New", "stock": 3}])
            await conn.create_order(later, "k2")
        finally:
            await conn.aclose()

    run(scenario())
    assert admin.units(key, "SKU-NEW") == 2


def test_find_order_finds_drafts_and_ignores_other_orders(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    opts = {"document_type": "salesorder", "approve": False}
    draft, other = request(make_order(), opts), request(make_order(), opts)

    async def scenario() -> tuple[str, str | None, str | None]:
        conn = connector(url, key)
        try:
            doc_id = await conn.create_order(draft, "k")
            return doc_id, await conn.find_order(draft), await conn.find_order(other)
        finally:
            await conn.aclose()

    doc_id, found, absent = run(scenario())
    assert found == doc_id and absent is None
    [doc] = admin.docs(key, "salesorder")
    assert doc["draft"] is True and doc["docNumber"] == ""


def test_lookup_before_create_keeps_one_document(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    req = request(make_order())

    async def scenario() -> list[str]:
        conn = connector(url, key)
        try:
            first = await deliver(conn, req)
            # a rerun after a crash: the engine looks first and finds the document
            again = await conn.find_order(req)
            assert again is not None
            return [first, again]
        finally:
            await conn.aclose()

    ids = run(scenario())
    assert ids[0] == ids[1]
    assert len(admin.docs(key, ref=req.cust_ref)) == 1


def test_unknown_warehouse_is_a_setting_to_fix(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)

    async def scenario() -> ConfigError:
        conn = connector(url, key)
        try:
            with pytest.raises(ConfigError) as caught:
                await conn.create_order(request(make_order(), {"warehouse_id": "0" * 24}), "k")
            return caught.value
        finally:
            await conn.aclose()

    err = run(scenario())
    assert "warehouse" in err.message and "warehouse_id" in err.fix
    assert admin.docs(key) == []


@pytest.mark.parametrize("on_http_200", [True, False])
def test_status_0_refusals_map_to_the_taxonomy(admin: Admin, url: str, on_http_200: bool) -> None:
    key = admin.account(products=PRODUCTS)
    admin.quirks(errors_on_http_200=on_http_200, strict_designs=True)
    seen: dict[str, Exception] = {}

    async def attempt(name: str, req: Any) -> None:
        conn = connector(url, key)
        try:
            await conn.create_order(req, "k")
        except Exception as exc:
            seen[name] = exc
        finally:
            await conn.aclose()

    async def scenario() -> None:
        await attempt("design", request(make_order(), {"design_id": "nope"}))
        admin.refuse("/documents/salesreceipt", "Cannot create documents with a date in a closed period")
        await attempt("closed", request(make_order()))
        admin.refuse("/documents/salesreceipt", "Too many requests")
        await attempt("busy", request(make_order()))
        admin.refuse("/documents/salesreceipt", "Not found")
        await attempt("missing", request(make_order()))

    run(scenario())
    assert isinstance(seen["design"], ConfigError) and "design_id" in seen["design"].fix
    assert type(seen["closed"]) is DataError and "closed period" in seen["closed"].message
    assert isinstance(seen["busy"], RateLimited)
    assert type(seen["missing"]) is DataError
    assert admin.docs(key) == []


@pytest.mark.parametrize("on_http_200", [False, True])
def test_a_bad_key_is_an_auth_error(admin: Admin, url: str, on_http_200: bool) -> None:
    admin.quirks(auth_on_http_200=on_http_200)

    async def scenario() -> tuple[Exception, Any]:
        conn = connector(url, "not-a-real-key-123")
        try:
            with pytest.raises(AuthError) as caught:
                await conn.create_order(request(make_order()), "k")
            return caught.value, await conn.check()
        finally:
            await conn.aclose()

    err, check = run(scenario())
    assert "API key" in str(err)
    assert not check.ok and "API key" in check.message


def test_an_html_page_means_a_wrong_base_url(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)

    async def scenario() -> ConfigError:
        conn = connector(url + "/api/invoicing/v9", key)
        try:
            with pytest.raises(ConfigError) as caught:
                await conn.find_order(request(make_order()))
            return caught.value
        finally:
            await conn.aclose()

    assert "web page" in run(scenario()).message


def test_check_reports_unknown_ids_in_words(admin: Admin, url: str) -> None:
    key = admin.account()
    good = admin.seed(key, channels=[{"name": "Wix"}])["channels"]["Wix"]

    async def scenario() -> tuple[Any, Any]:
        ok = connector(url, key, {"sales_channel_id": good})
        bad = connector(url, key, {"warehouse_id": "f" * 24, "numbering_series_id": "e" * 24,
                                   "generic_contact_id": "d" * 24})
        try:
            return await ok.check(), await bad.check()
        finally:
            await ok.aclose()
            await bad.aclose()

    ok, bad = run(scenario())
    assert ok.ok and "warehouse" in ok.message
    assert not bad.ok
    for words in ("warehouse ffff", "numbering series eeee", "generic contact dddd"):
        assert words in bad.message


def test_route_options_override_only_what_they_set() -> None:
    settings = HoldedSettings(document_type="invoice", approve=False, shipping_line_name="Envío")
    conn = HoldedConnector.__new__(HoldedConnector)
    conn.ctx = type("Ctx", (), {"settings": settings})()  # options() only reads the settings
    opts = conn.options(request(make_order(), {"document_type": "salesorder"}))
    assert (opts.document_type, opts.approve, opts.shipping_line_name) == ("salesorder", False, "Envío")
    assert conn.options(None).document_type == "invoice"
    assert HoldedConnector.settings_problems(HoldedSettings(approve=False))
    assert HoldedConnector.settings_problems(HoldedSettings()) == []


def test_cancel_of_an_unknown_document_is_done(admin: Admin, url: str) -> None:
    key = admin.account()

    async def scenario() -> Any:
        conn = connector(url, key)
        try:
            with pytest.raises(NotFound):
                await conn.client.document("invoice", "a" * 24)
            return await conn.cancel_order("a" * 24, request(make_order()))
        finally:
            await conn.aclose()

    result = run(scenario())
    assert result.canceled and "no longer exists" in result.note
