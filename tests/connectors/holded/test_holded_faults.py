"""Injected faults and rate limits: whatever happens on the wire, one document per order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from holded_support import Admin, ScaledBudget, connector, deliver, make_order, request

from orderbridge.connectors.errors import TransientError
from orderbridge.connectors.holded.sandbox import create_app
from orderbridge.connectors.sandbox_kit import ServedApp

FAULTS = ["500", "502", "503", "429", "timeout", "timeout_after", "malformed", "reset"]
PRODUCTS = [{"sku": "SKU-1", "name": "Shirt", "stock": 50}]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("kind", FAULTS)
def test_a_fault_on_create_still_gives_one_document(admin: Admin, url: str, kind: str) -> None:
    key = admin.account(products=PRODUCTS)
    req = request(make_order([("SKU-1", 2, "10.00")]))
    admin.faults(next=[{"kind": kind, "count": 1}], match="/documents/salesreceipt?", hang_seconds=1.0)

    async def scenario() -> str:
        conn = connector(url, key, timeout=0.4)
        try:
            return await deliver(conn, req)
        finally:
            await conn.aclose()

    doc_id = run(scenario())
    docs = admin.docs(key, ref=req.cust_ref)
    assert [d["id"] for d in docs] == [doc_id]
    assert docs[0]["status"] == 1 and len(docs[0]["paymentsDetail"]) == 1
    assert admin.units(key, "SKU-1") == 48
    assert [c for c in admin.calls() if c["fault"] == kind]  # the fault did happen


@pytest.mark.parametrize("kind", ["timeout_after", "malformed", "503"])
def test_a_fault_on_payment_pays_once(admin: Admin, url: str, kind: str) -> None:
    key = admin.account(products=PRODUCTS)
    req = request(make_order([("SKU-1", 1, "10.00")]))
    admin.faults(next=[{"kind": kind, "count": 1}], match="/pay", hang_seconds=1.0)

    async def scenario() -> str:
        conn = connector(url, key, timeout=0.4)
        try:
            with pytest.raises(TransientError):
                await conn.create_order(req, "k")  # the document exists, its payment is in doubt
            found = await conn.find_order(req)  # the engine's next attempt looks first, and settles
            assert found is not None
            return found
        finally:
            await conn.aclose()

    doc_id = run(scenario())
    [doc] = admin.docs(key, ref=req.cust_ref)
    assert doc["id"] == doc_id and doc["status"] == 1 and doc["paymentsPending"] == 0
    assert len(doc["paymentsDetail"]) == 1


def test_faults_everywhere_still_one_document_each(admin: Admin, url: str) -> None:
    key = admin.account(products=PRODUCTS)
    reqs = [request(make_order([("SKU-1", 1, "10.00")], customer_id=f"c{n}", email=f"{n}@x.es")) for n in range(6)]
    admin.faults(rates={"503": 0.08, "malformed": 0.08, "timeout_after": 0.04, "reset": 0.04}, hang_seconds=0.4)

    async def scenario() -> list[str]:
        conn = connector(url, key, timeout=0.25)
        try:
            return [await deliver(conn, r, attempts=30) for r in reqs]
        finally:
            await conn.aclose()

    ids = run(scenario())
    admin.faults()  # clear, then count
    for r, doc_id in zip(reqs, ids, strict=True):
        assert [d["id"] for d in admin.docs(key, ref=r.cust_ref)] == [doc_id]
    assert admin.units(key, "SKU-1") == 44


@pytest.fixture
def limited() -> Iterator[tuple[str, Admin]]:
    """A sandbox limiting each key to 100 calls a second: Holded's 100 a minute, time compressed 60x."""
    with ServedApp(create_app({"accounts": [], "rate_limit_calls": 100, "rate_limit_period": 1.0})) as s:
        a = Admin(s.url)
        yield s.url, a
        a.http.close()


def test_the_rate_budget_keeps_under_the_limit(limited: tuple[str, Admin]) -> None:
    url, admin = limited
    key = admin.account(products=PRODUCTS)
    reqs = [request(make_order([("SKU-1", 1, "10.00")], customer_id=f"c{n}", email=f"{n}@x.es")) for n in range(30)]

    async def scenario() -> list[str]:
        conn = connector(url, key, budget=ScaledBudget(60.0))  # the connector's own 100/min, 60x faster
        try:
            return list(await asyncio.gather(*(conn.create_order(r, "k") for r in reqs)))
        finally:
            await conn.aclose()

    ids = run(scenario())
    calls = admin.calls()
    assert len(set(ids)) == 30 and len(calls) > 100  # enough calls to have crossed a window
    assert [c for c in calls if c["status"] == 429] == []


def test_429_answers_are_waited_out(limited: tuple[str, Admin]) -> None:
    url, admin = limited
    admin.http.post("/rate_limit", json={"calls": 15, "period": 1.0}).raise_for_status()
    key = admin.account(products=PRODUCTS)
    reqs = [request(make_order([("SKU-1", 1, "10.00")], customer_id=f"c{n}", email=f"{n}@x.es")) for n in range(6)]

    async def scenario() -> list[str]:
        conn = connector(url, key, budget=ScaledBudget(1000.0))  # a budget far above the real limit
        try:
            return list(await asyncio.gather(*(deliver(conn, r) for r in reqs)))
        finally:
            await conn.aclose()

    ids = run(scenario())
    limited_calls = [c for c in admin.calls() if c["status"] == 429]
    assert limited_calls and all(c["fault"] == "rate_limit" for c in limited_calls)
    for r, doc_id in zip(reqs, ids, strict=True):
        assert [d["id"] for d in admin.docs(key, ref=r.cust_ref)] == [doc_id]
