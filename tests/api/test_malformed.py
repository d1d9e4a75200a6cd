"""Malformed input of every shape on every route: always HTTP 200 and an envelope, never a 500."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbridge.api.app import ENDPOINTS
from tests.api.api_support import Served, order
from tests.support.engine import sync

KEYS = ("acme-cart", "acme-wms", "warehouse", "acme-merchant")
NAMES = ["cust_ref", "items", "item", "quantity", "order_status", "shipments", "sku", "qty_available", "tracking_no",
         "date", "price", "ship_city", "inventory", "order_date", "extra_fields", "ship_is_billing", "tax"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), inner,
                                                                max_size=5),
    max_leaves=20)
SEGMENT = st.text(st.characters(min_codepoint=32, blacklist_categories=("Cs",), blacklist_characters="\x7f"),
                  max_size=10).map(lambda s: quote(s, safe=""))
QUERY = st.dictionaries(st.sampled_from(["limit", "page", "from_date", "to_date", "include_aliases", "order_source"]),
                        st.text(max_size=6), max_size=3)
FAST = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


def envelope(r: Any) -> bool:
    return r.status_code == 200 and r.headers["content-type"] == "application/json" and "success_code" in r.json()


def test_any_route_any_body(api: Served) -> None:
    clients = {k: api.client(k) for k in KEYS}
    bad: list[Any] = []

    @FAST
    @given(st.sampled_from(ENDPOINTS), st.sampled_from(KEYS), JSON, SEGMENT, QUERY,
           st.sampled_from([None, "1", "x", "99999999999999999999"]))
    def call(ep: Any, key: str, body: Any, ref: str, params: dict[str, str], pk: str | None) -> None:
        path = ep.path.replace("{cust_ref}", ref or "x").replace("{sku}", ref or "x").replace("{status}", ref or "any")
        content = json.dumps(body, allow_nan=True).encode() if ep.method == "POST" else None
        r = clients[key].request(ep.method, path, content=content, params=params,
                                 headers={"X-Merchant-Pk": pk} if pk else {})
        if not envelope(r):
            bad.append((ep.path, key, body, ref, params, r.status_code, r.text[:200]))

    call()
    assert not bad, bad[:5]


def test_odd_orders_are_stored_or_refused_cleanly(api: Served) -> None:
    cart, wms = api.client("acme-cart"), api.client("acme-wms")
    bad: list[Any] = []
    line_names = ["item", "quantity", "price", "discount", "tax", "line_item_id", "extra_fields", "shipping_surcharge"]

    @FAST
    @given(st.dictionaries(st.sampled_from(NAMES), JSON, max_size=4),
           st.lists(st.dictionaries(st.sampled_from(line_names), JSON, max_size=4), max_size=2), st.booleans())
    def push(changes: dict[str, Any], lines: list[dict[str, Any]], as_list: bool) -> None:
        body = order("Z", ("A", 1))
        body.update(changes)
        if lines:
            body["items"] = [{"item": "A", "quantity": 1, **line} for line in lines]
        r = cart.post("/cart/orders/cartrover", content=json.dumps([body] if as_list else body, allow_nan=True))
        if not envelope(r):
            bad.append((body, r.text[:300]))
        ref = body.get("cust_ref")
        if isinstance(ref, str) and ref.strip():
            r = cart.get("/cart/orders/" + quote(ref.strip(), safe=""),
                         params={"include_order_extras": "Y", "include_line_extras": "Y", "include_aliases": "Y"})
            if not envelope(r):
                bad.append((body, r.text[:300]))

    push()
    sync(api.hub)
    for status in ("any", "new", "error"):
        assert envelope(cart.get(f"/cart/orders/list/{status}", params={"limit": 100, "include_line_extras": "Y"}))
        assert envelope(wms.get(f"/merchant/orders/list/{status}", params={"limit": 100}))
    assert not bad, bad[:3]
