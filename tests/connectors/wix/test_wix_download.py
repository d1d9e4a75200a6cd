"""Order download, fetch, cancellations and survey against the Wix sandbox over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from wix_support import WixAdmin, connector, run

from orderbridge.connectors.base import DownloadedOrder, SkippedOrder, Window
from orderbridge.connectors.wix.connector import WixConnector


def _all(url: str, site: dict[str, Any], settings: dict[str, Any] | None = None,
         since: datetime | None = None) -> dict[str, Any]:
    async def go(c: WixConnector) -> dict[str, Any]:
        return {i.external_id: i async for i in c.download(Window(since=since, until=datetime.now(UTC)))}
    return dict(run(connector(url, site, settings), go))


def test_paid_unpaid_refunded_cancelled(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    paid = admin.order(site, paymentStatus="PAID", buyer={"email": "ana@example.com", "contactId": "c-ana"},
                       customFields=[{"title": "NIF", "value": "b 1234567 8"}], buyerNote="ring twice")
    unpaid = admin.order(site, paymentStatus="NOT_PAID")
    refunded = admin.order(site)
    admin.act(site, refunded["id"], "refund")
    partly = admin.order(site)
    admin.act(site, partly["id"], "refund", amount="1.00")
    cancelled = admin.order(site)
    admin.act(site, cancelled["id"], "cancel")

    items = _all(wix_url, site)
    assert len(items) == 5
    order = items[paid["id"]].order
    assert order is not None and order.paid
    assert order.cust_po_no == paid["number"] and order.external_id == paid["id"]
    assert (order.customer_id, order.bill_to.email, order.tax_id) == ("c-ana", "ana@example.com", "B12345678")
    assert order.notes == "ring twice" and order.totals.currency == "EUR"
    assert order.lines[0].sku == "MUG-1" and order.lines[0].quantity == 2
    assert order.lines[0].unit_price == Decimal("12") and order.lines[0].tax == Decimal("5.04")
    assert order.order_date.tzinfo is not None and order.ship_to.address1

    unpaid_order = items[unpaid["id"]]
    assert isinstance(unpaid_order, DownloadedOrder) and unpaid_order.order is not None
    assert unpaid_order.order.paid is False

    for oid, words in ((refunded["id"], "refunded"), (cancelled["id"], "cancelled")):
        skipped = items[oid]
        assert isinstance(skipped, SkippedOrder) and skipped.final and words in skipped.reason
    partial = items[partly["id"]]
    assert isinstance(partial, DownloadedOrder) and partial.order is not None and partial.order.paid


def test_paid_only_skips_unpaid_until_paid(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    unpaid = admin.order(site, paymentStatus="NOT_PAID")
    before = datetime.now(UTC)
    item = _all(wix_url, site, {"import_orders": "paid_only"})[unpaid["id"]]
    assert isinstance(item, SkippedOrder) and not item.final and "not paid" in item.reason

    admin.act(site, unpaid["id"], "pay")  # a later payment moves updatedDate: seen again, now paid
    again = _all(wix_url, site, {"import_orders": "paid_only"}, since=before)
    assert isinstance(again[unpaid["id"]], DownloadedOrder)
    order = again[unpaid["id"]].order
    assert order is not None and order.paid and order.source_status == "APPROVED/PAID"


def test_window_reads_orders_updated_in_it(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    old = admin.order(site, createdDate="2026-01-02T10:00:00Z", updatedDate="2026-01-02T10:00:00Z")
    new = admin.order(site)
    since = datetime(2026, 6, 1, tzinfo=UTC)
    items = _all(wix_url, site, since=since)
    assert new["id"] in items and old["id"] not in items
    early = _all(wix_url, site, {"earliest_order_date": "2026-03-01"})
    assert old["id"] not in early and new["id"] in early


def test_cursor_paging_to_the_end(wix_url: str, admin: WixAdmin) -> None:
    site = admin.site()
    admin.post(f"/sites/{site['siteId']}/orders/generate", {"count": 237, "paidRatio": 0.5})
    admin.http.delete("/calls")
    items = _all(wix_url, site)
    assert len(items) == 237
    searches = [c for c in admin.calls("/ecom/v1/orders/search") if c["method"] == "POST"]
    assert len(searches) == 3  # 100 + 100 + 37
    paid = [i for i in items.values() if isinstance(i, DownloadedOrder) and i.order and i.order.paid]
    assert 0 < len(paid) < 237


def test_malformed_order_becomes_an_error_item(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    bad = admin.order(site)
    admin.patch_order(site, bad["id"], lineItems=[{"id": "x", "quantity": 1, "productName": {"original": "Gift"},
                                                   "price": {"amount": "5.00"}}])
    worse = admin.order(site)
    admin.patch_order(site, worse["id"], lineItems=[{"id": "y", "quantity": "lots",
                                                     "physicalProperties": {"sku": "MUG-1"}}])
    items = _all(wix_url, site)
    no_sku = items[bad["id"]]
    assert isinstance(no_sku, DownloadedOrder) and no_sku.order is None
    assert "no SKU" in no_sku.error and "SKU" in no_sku.fix
    bad_qty = items[worse["id"]]
    assert isinstance(bad_qty, DownloadedOrder) and bad_qty.order is None and "quantity" in bad_qty.error
    by_product = _all(wix_url, site, {"missing_sku": "skip_line"})[bad["id"]]
    assert isinstance(by_product, DownloadedOrder) and by_product.order is None  # no line left


def test_fetch_order(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    o = admin.order(site)

    async def go(c: WixConnector) -> tuple[Any, Any]:
        return await c.fetch_order(o["id"]), await c.fetch_order("does-not-exist")
    found, missing = run(connector(wix_url, site), go)
    assert isinstance(found, DownloadedOrder) and found.order is not None and missing is None


def test_cancellations_in_window(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    keep = admin.order(site)
    gone = admin.order(site)
    since = datetime.now(UTC) - timedelta(seconds=5)
    admin.act(site, gone["id"], "cancel", restockAllItems=True)

    async def go(c: WixConnector) -> list[Any]:
        return [x async for x in c.cancellations(Window(since=since, until=datetime.now(UTC)))]
    found = run(connector(wix_url, site), go)
    assert [c.external_id for c in found] == [gone["id"]]
    assert found[0].canceled_at is not None and keep["id"] not in {c.external_id for c in found}


def test_survey_by_number_and_window(wix_url: str, admin: WixAdmin, site: dict[str, Any]) -> None:
    a = admin.order(site, paymentStatus="NOT_PAID")
    b = admin.order(site)
    admin.act(site, b["id"], "cancel")

    async def go(c: WixConnector) -> tuple[Any, Any]:
        now = datetime.now(UTC)
        window = Window(since=now - timedelta(days=1), until=now)
        return await c.survey(window, f"#{a['number']}"), await c.survey(window)
    one, every = run(connector(wix_url, site, {"import_orders": "paid_only"}), go)
    assert [s.external_id for s in one] == [a["id"]] and "not paid" in one[0].not_eligible_reason
    reasons = {s.external_id: s.not_eligible_reason for s in every}
    assert "cancelled" in reasons[b["id"]] and set(reasons) == {a["id"], b["id"]}
