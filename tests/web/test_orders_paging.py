"""The orders page on 10,000 orders: keyset paging, filters and search stay correct (and the time of
each page is printed: indexed queries, no OFFSET scans)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.web.conftest import http_login
from tests.web.world import add_orders, two_merchants

N = 10_000


def order_numbers(html: str) -> list[str]:
    return re.findall(r'<a href="/dashboard/orders/\d+">([^<]+)</a>', html)


def timed(client: httpx.Client, url: str, timings: dict[str, float]) -> str:
    started = time.perf_counter()
    r = client.get(url)
    timings[url] = time.perf_counter() - started
    assert r.status_code == 200, r.text[:500]
    return r.text


def test_orders_page_on_ten_thousand_orders(serve: Any, db_url: str) -> None:
    app = serve(two_merchants())
    add_orders(app.hub, "acme-shop", N, prefix="PO-", sku="CHAIR", customer="Buyer")
    add_orders(app.hub, "globex-shop", 5, prefix="GX-", sku="LAMP", status="error")
    client = http_login(app.url)
    timings: dict[str, float] = {}

    first = timed(client, "/orders", timings)
    assert f"{N + 5} order(s) match" in first
    assert order_numbers(first)[:3] == ["GX-5", "GX-4", "GX-3"]

    page = timed(client, "/orders?connection=acme-shop", timings)
    assert f"{N} order(s) match" in page
    seen = order_numbers(page)
    assert seen == [f"PO-{i}" for i in range(N, N - 50, -1)]
    for _ in range(3):  # older pages follow on without gaps or repeats
        older = re.search(r'href="/dashboard/orders\?([^"]*before=\d+)"', page)
        assert older, "no link to older orders"
        page = timed(client, "/orders?" + older.group(1).replace("&amp;", "&"), timings)
        seen += order_numbers(page)
    assert seen == [f"PO-{i}" for i in range(N, N - 200, -1)]
    newer = re.search(r'href="/dashboard/orders\?([^"]*after=\d+)"', page)
    assert newer
    back = timed(client, "/orders?" + newer.group(1).replace("&amp;", "&"), timings)
    assert order_numbers(back) == [f"PO-{i}" for i in range(N - 100, N - 150, -1)]

    deep = timed(client, "/orders?connection=acme-shop&before=60", timings)
    assert order_numbers(deep)[-1] == "PO-10" and 'rel="next"' in deep  # ids 10..59 shown, 9 older
    assert "rel=\"next\"" not in timed(client, "/orders?connection=acme-shop&before=11", timings)

    errors = timed(client, "/orders?status=error", timings)
    assert "5 order(s) match" in errors and set(order_numbers(errors)) == {f"GX-{i}" for i in range(1, 6)}
    rare = timed(client, "/orders?q=CHAIR-RARE", timings)  # every 100th order holds the rare SKU
    assert f"{N // 100} order(s) match" in rare
    assert timed(client, "/orders?q=PO-9999", timings).count("PO-9999") >= 1
    assert "1 order(s) match" in timed(client, "/orders?q=buyer 4242", timings)
    dated = timed(client, "/orders?connection=acme-shop&since=2026-11-02&until=2026-11-02", timings)
    assert "1440 order(s) match" in dated  # one order a minute from 2026-11-01 00:00
    assert "is not a date" in timed(client, "/orders?since=yesterday", timings)

    print(f"\norders page on {N} orders ({db_url.split(':')[0]}):")
    for url, seconds in timings.items():
        print(f"  {seconds * 1000:7.1f} ms  {url}")
