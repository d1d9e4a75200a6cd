"""CartRover's conventions as its clients rely on them (research notes §1 and the tolerances of §6):
auth styles, body shapes, the envelope with HTTP 200, process ids, paging, dates, limits."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from orderbridge.api.settings import ApiSettings
from tests.api.api_support import Served, order, serve, standard_keys, two_merchants
from tests.api.test_flow import fail, ok


def raw_request(api: Served, method: str, target: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """Exactly these bytes on the wire (no client normalising the URL or adding headers)."""
    parts = urlsplit(api.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.putrequest(method, target, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(data)


def basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


def test_auth_styles_and_precedence(api: Served) -> None:
    user, key = api.keys["acme-cart"]
    query = urlencode({"api_user": user, "api_key": key})
    status, _, body = raw_request(api, "GET", f"/v1/cart/orders/list/any?{query}")
    assert status == 200 and body == {"success_code": True, "response": []}
    status, _, body = raw_request(api, "GET", "/v1/cart/orders/list/any?", headers={"Authorization": basic(user, key)})
    assert body["success_code"] is True  # a bare trailing '?', as the PHP client sends
    # Basic wins over the query string
    wrong = urlencode({"api_user": user, "api_key": "nope"})
    assert raw_request(api, "GET", f"/v1/cart/orders/list/any?{wrong}",
                       headers={"Authorization": basic(user, key)})[2]["success_code"] is True
    assert "not valid" in raw_request(api, "GET", f"/v1/cart/orders/list/any?{query}",
                                      headers={"Authorization": basic(user, "nope")})[2]["message"]
    assert "Missing credentials" in raw_request(api, "GET", "/v1/cart/orders/list/any")[2]["message"]
    assert "Basic auth" in raw_request(api, "GET", "/v1/cart/orders/list/any",
                                       headers={"Authorization": "Basic %%%"})[2]["message"]


def test_create_body_shapes(api: Served) -> None:
    user, key = api.keys["acme-cart"]
    auth = {"Authorization": basic(user, key)}
    # sifourteen's client: form-urlencoded with Rails/PHP-style nested keys
    form = ("cust_ref=F1&ship_address_1=1+Main+St&ship_city=Austin&ship_state=TX&ship_zip=73301&ship_country=US"
            "&items[][item]=C100&items[][quantity]=2&items[][item]=C200&items[][quantity]=1&items[][price]=3.5"
            "&extra_fields[gift]=yes")
    _, _, body = raw_request(api, "POST", "/v1/cart/orders/cartrover", form.encode(),
                             {**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert body == {"success_code": True, "cust_ref": "F1", "order_number": "F1"}
    form2 = ("cust_ref=F2&ship_city=Austin&items[0][item]=C100&items[0][quantity]=1"
             "&items[1][item]=C300&items[1][quantity]=4")
    assert raw_request(api, "POST", "/v1/cart/orders/cartrover", form2.encode(), auth)[2]["success_code"] is True
    # the PHP client: a JSON array, even for one order (no Content-Type needed)
    assert raw_request(api, "POST", "/v1/cart/orders/cartrover", json.dumps([order("J1")]).encode(), auth)[2] == {
        "success_code": True, "cust_ref": "J1", "order_number": "PO-J1"}
    many = raw_request(api, "POST", "/v1/cart/orders/cartrover", json.dumps([order("J2"), order("J3")]).encode(),
                       auth)[2]
    assert [s["cust_ref"] for s in many["response"]["success"]] == ["J2", "J3"]
    with api.client("acme-cart") as cart:
        f1 = ok(cart.get("/cart/orders/F1", params={"include_order_extras": "Y"}))
        assert [(i["item"], i["quantity"], i["price"]) for i in f1["items"]] == [
            ("C100", "2", "0.0000"), ("C200", "1", "3.5000")]
        assert f1["extra_fields"] == {"gift": "yes"}
        assert ok(cart.get("/cart/orders/F1"))["extra_fields"] is None
        assert [i["item"] for i in ok(cart.get("/cart/orders/F2"))["items"]] == ["C100", "C300"]
        assert "not valid JSON" in fail(cart.post("/cart/orders/cartrover", content=b'{"cust_ref": "X"',
                                                  headers={"Content-Type": "application/json"}))
        assert "empty" in fail(cart.post("/cart/orders/cartrover", content=b""))
        assert "not a JSON number" in fail(cart.post("/cart/orders/cartrover", content=b'{"cust_ref": NaN}'))
        assert "order object" in fail(cart.post("/cart/orders/cartrover", json="just text"))


def test_gets_without_or_with_odd_content_type_and_encoded_paths(api: Served) -> None:
    user, key = api.keys["acme-cart"]
    auth = {"Authorization": basic(user, key)}
    with api.client("acme-cart") as cart:
        ok(cart.post("/cart/orders/cartrover", json=order("R 1/x+y")))
    for headers in ({}, {"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "application/json"}):
        status, _, body = raw_request(api, "GET", "/v1/cart/orders/R%201%2Fx%2By", headers={**auth, **headers})
        assert status == 200 and body["response"]["cust_ref"] == "R 1/x+y"
    assert raw_request(api, "GET", "/v1/cart/orders/status/R%201%2Fx%2By", headers=auth)[2]["response"][
        "order_status"] == "new"


def test_every_answer_is_200_json_with_envelope_and_process_id(api: Served) -> None:
    seen: set[str] = set()
    big = json.dumps([order(f"BIG{i}") for i in range(6000)]).encode()
    assert len(big) > 2_000_000
    with api.client("acme-cart") as cart, api.client(("nobody", "nothing")) as stranger:
        answers = [
            cart.get("/cart/orders/list/any"), cart.get("/cart/orders/NOPE"), cart.get("/cart/orders/list/bogus"),
            cart.get("/nowhere/at/all"), cart.put("/cart/orders/cartrover", json={}),
            stranger.get("/merchant/inventory"),
            cart.get("/merchant/inventory"), cart.post("/cart/orders/batch", content=b"{{{"),
            cart.post("/cart/orders/batch", content=big), cart.get("/cart/orders/list/any", params={"limit": "x"}),
        ]
    for r in answers:
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
        assert isinstance(r.json()["success_code"], bool)
        seen.add(r.headers["x-cartrover-process-id"])
    assert len(seen) == len(answers)  # one id per request
    messages = [r.json().get("message", "") for r in answers]
    assert "not found" in messages[1] and "Unknown order status" in messages[2]
    assert int(answers[1].headers["x-cartrover-api-minute-hits-remaining"]) > 0  # on errors too
    assert "Unknown endpoint" in messages[3] and "not allowed" in messages[4]
    assert "not valid" in messages[5] and "merchant or warehouse key" in messages[6]
    assert "over the limit" in messages[8] and "whole number" in messages[9]


def test_paging_to_the_end_and_dates(api: Served) -> None:
    with api.client("acme-cart") as cart:
        ok(cart.post("/cart/orders/batch", json=[order(f"P{i:02d}") for i in range(45)]))
        seen, page = [], 1
        while True:
            r = cart.get("/cart/orders/list/new", params={"limit": 20, "page": page})
            chunk = ok(r)
            assert r.headers["total-records"] == "45"
            seen += [o["cust_ref"] for o in chunk]
            if len(chunk) < 20:
                break
            page += 1
        assert page == 3 and seen == [f"P{i:02d}" for i in range(45)]
        assert len(ok(cart.get("/cart/orders/list/new"))) == 20  # default limit
        assert "between 1 and 100" in fail(cart.get("/cart/orders/list/new", params={"limit": 101}))
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
        assert ok(cart.get("/cart/orders/list/new", params={"from_date": f"{tomorrow:%Y-%-m-%-d}"})) == []
        assert len(ok(cart.get("/cart/orders/list/any", params={"from_date": "2020-5-3", "limit": 100}))) == 45
        # a raw '+' in the query decodes to a space: still understood
        r = cart.get("/cart/orders/list/any?from_date=2020-05-03T00:00:00+00:00&to_date=" + f"{tomorrow}&limit=5")
        assert len(ok(r)) == 5
        assert "ISO 8601" in fail(cart.get("/cart/orders/list/any", params={"from_date": "yesterday"}))


# One call leaks out of a full bucket every LEAK_SECONDS: long enough that the calls a step makes
# one after the other fall within it even on a loaded machine.
LEAK_SECONDS = 3.0


@pytest.fixture
def tight(make_hub: Any) -> Iterator[Served]:
    for served in serve(make_hub(two_merchants()), ApiSettings(bucket_size=3, leak_seconds=LEAK_SECONDS)):
        standard_keys(served)
        yield served


def test_rate_limit_reached_and_recovered(tight: Served) -> None:
    with tight.client("acme-cart") as cart, tight.client("beta-cart") as other:
        remaining = [int(cart.get("/cart/orders/list/any").headers["x-cartrover-api-minute-hits-remaining"])
                     for _ in range(3)]
        assert remaining == [2, 1, 0]
        limited = cart.get("/cart/orders/list/any")
        assert limited.status_code == 200 and limited.json() == {
            "success_code": False, "error_code": "RateLimit", "message": "Over API Limit. Please slow down requests.",
            "status_message": "Over API Limit. Please slow down requests."}
        assert limited.headers["x-cartrover-api-minute-hits-remaining"] == "0"
        assert ok(other.get("/cart/orders/list/any")) == []  # buckets are per key
        # creating an order is not rate-limited
        assert cart.post("/cart/orders/cartrover", json=order("RL1")).json()["success_code"] is True
        time.sleep(LEAK_SECONDS + 0.05)  # one call leaks out
        assert ok(cart.get("/cart/orders/list/any"))[0]["cust_ref"] == "RL1"
        assert cart.get("/cart/orders/list/any").json()["error_code"] == "RateLimit"


def test_openapi_served(api: Served) -> None:
    doc = httpx.get(api.url + "/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/cart/orders/cartrover" in doc["paths"]
