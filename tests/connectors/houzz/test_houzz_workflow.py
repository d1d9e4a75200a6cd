"""Houzz Seller workflow steps (Process, Charge) and the settings that drive them."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import pytest
from houzz_support import Admin, opened

from orderbridge.connectors.base import DownloadedOrder, StoredOrder
from orderbridge.connectors.errors import DataError, TransientError
from orderbridge.connectors.houzz.connector import HouzzSellerConnector, HouzzSellerSettings


def houzz_methods(calls: list[dict[str, Any]]) -> list[str]:
    return [parse_qs(c["query"]).get("method", ["?"])[0] for c in calls]


async def stored(c: Any, oid: str) -> StoredOrder:
    item = await c.fetch_order(oid)
    assert isinstance(item, DownloadedOrder) and item.order is not None, item
    return StoredOrder(order_id=1, external_id=oid, cust_po_no=oid, cust_ref="R1", order=item.order, raw=item.raw)


@pytest.mark.parametrize(("settings", "status", "expected"), [
    ({}, "Placed", [("process", False), ("charge", True)]),
    ({}, "InProduction", [("charge", True)]),
    ({}, "Charged", []),
    ({"mark_processed": False}, "Placed", [("charge", True)]),
    ({"mark_charged": False}, "Placed", [("process", False)]),
    ({"order_status": "In Production", "mark_processed": False}, "InProduction", [("charge", True)]),
    ({"order_status": "Charged", "mark_processed": False, "mark_charged": False}, "Charged", []),
])
def test_workflow_steps_follow_the_switches_and_the_status(url: str, admin: Admin, settings: dict[str, Any],
                                                          status: str, expected: list[tuple[str, bool]]) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status=status)

    async def go() -> None:
        async with opened(url, acc, settings) as c:
            steps = c.workflow_steps((await stored(c, oid)).order)
            assert [(s.name, s.blocks_delivery) for s in steps] == expected
            assert all("Houzz" in s.label for s in steps)

    asyncio.run(go())


def run_steps(url: str, admin: Admin, plan: list[tuple[str, bool]]) -> tuple[str, str, list[str], int]:
    """A new order taken through ``plan`` ((step, retry) pairs): (account, order id, notes, the call
    log's position before the steps)."""
    acc = admin.account()
    oid = admin.order(acc["acct"])
    since = admin.last_seq()

    async def go() -> list[str]:
        async with opened(url, acc) as c:
            order = await stored(c, oid)
            return [await c.run_workflow_step(step, order, retry=retry) for step, retry in plan]

    return acc["acct"], oid, asyncio.run(go()), since


def test_process_then_charge_is_idempotent(url: str, admin: Admin) -> None:
    # Retried (an earlier attempt may have reached Houzz), a step reads the status first.
    acct, oid, notes, since = run_steps(url, admin, [("process", False), ("charge", False),
                                                     ("process", True), ("charge", True)])
    assert notes[:2] == ["marked Processed at Houzz", "charged at Houzz"]
    assert "already processed" in notes[2] and "already charged" in notes[3]
    assert admin.status(acct, oid) == "Charged"
    assert [(a["action"], a["result"]) for a in admin.actions(acct)] == [("Process", "ok"), ("Charge", "ok")]
    assert houzz_methods(admin.calls(since)).count("getOrder") == 3  # the fetch and the two retries


def test_a_first_attempt_writes_without_reading_first(url: str, admin: Admin) -> None:
    # The third: charged meanwhile (by hand in Seller Central), a first Process is answered as a no-op.
    acct, _, notes, since = run_steps(url, admin, [("process", False), ("charge", False), ("process", False)])
    assert notes == ["marked Processed at Houzz", "charged at Houzz", "already processed at Houzz (Charged)"]
    assert [(a["action"], a["result"]) for a in admin.actions(acct)] == [
        ("Process", "ok"), ("Charge", "ok"), ("Process", "noop")]
    assert houzz_methods(admin.calls(since)).count("getOrder") == 1  # only the test's own fetch


def test_charge_failure_is_a_data_error_with_houzz_reason(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="InProduction")
    admin.fail_charge(acc["acct"], oid, "Card declined: do not honor")

    async def go() -> str:
        async with opened(url, acc) as c:
            order = await stored(c, oid)
            with pytest.raises(DataError) as info:
                await c.run_workflow_step("charge", order)
            assert "Card declined: do not honor" in info.value.message and info.value.code == "ChargeFailed"
            assert "card" in info.value.fix
            # Retried once the merchant (or Houzz) has sorted the card out: charged.
            return await c.run_workflow_step("charge", order)

    assert asyncio.run(go()) == "charged at Houzz"
    assert [a["result"] for a in admin.actions(acc["acct"], "Charge")] == ["error", "ok"]


@pytest.mark.parametrize("retry", [False, True])
@pytest.mark.parametrize(("status", "step", "words"), [
    ("Canceled", "process", "cancelled at Houzz"),
    ("Canceled", "charge", "cancelled at Houzz"),
    ("Placed", "charge", "still New"),
])
def test_refusals_are_data_errors(url: str, admin: Admin, status: str, step: str, words: str, retry: bool) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"])

    async def go() -> None:
        async with opened(url, acc, {"mark_processed": False}) as c:
            order = await stored(c, oid)
            admin.set_status(acc["acct"], oid, status)
            with pytest.raises(DataError, match=words):
                await c.run_workflow_step(step, order, retry=retry)

    asyncio.run(go())
    writes = [a["result"] for a in admin.actions(acc["acct"], step.capitalize())]
    # A first attempt's write is refused by Houzz and explained; a retry reads first and does not write.
    assert writes == ([] if retry else ["error"])
    assert admin.status(acc["acct"], oid) == status


def test_steps_on_orders_already_past_them_do_nothing(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"])

    async def go() -> list[str]:
        async with opened(url, acc) as c:
            order = await stored(c, oid)
            admin.set_status(acc["acct"], oid, "Shipped")
            return [await c.run_workflow_step("process", order), await c.run_workflow_step("charge", order)]

    assert asyncio.run(go()) == ["already processed at Houzz (Shipped)", "already charged at Houzz (Shipped)"]
    assert [(a["action"], a["result"]) for a in admin.actions(acc["acct"])] == [
        ("SetStatus", "ok"), ("Process", "error"), ("Charge", "error")]  # refused by Houzz, nothing changed
    assert admin.status(acc["acct"], oid) == "Shipped"


def test_a_charge_whose_answer_was_lost_is_not_sent_twice(url: str, admin: Admin) -> None:
    acc = admin.account()
    oid = admin.order(acc["acct"], Status="InProduction")

    async def go() -> str:
        async with opened(url, acc, http_timeout=0.5) as c:
            order = await stored(c, oid)
            admin.faults(next=[{"kind": "timeout_after", "count": 1}], hang_seconds=1.5, match="updateOrder")
            with pytest.raises(TransientError):
                await c.run_workflow_step("charge", order)
            admin.clear_faults()
            return await c.run_workflow_step("charge", order, retry=True)  # the engine's retry

    assert "already charged" in asyncio.run(go())
    assert [a["result"] for a in admin.actions(acc["acct"], "Charge")] == ["ok"]


def test_unknown_step_is_a_config_error(url: str, admin: Admin) -> None:
    from orderbridge.connectors.errors import ConfigError

    acc = admin.account()
    oid = admin.order(acc["acct"])

    async def go() -> None:
        async with opened(url, acc) as c:
            with pytest.raises(ConfigError):
                await c.run_workflow_step("refund", await stored(c, oid))

    asyncio.run(go())


@pytest.mark.parametrize(("settings", "words"), [
    ({"order_status": "Charged"}, "turn off 'Mark Orders as Processed' and 'Mark Orders as Charged'"),
    ({"order_status": "In Production"}, "turn off 'Mark Orders as Processed'"),
    ({"mark_processed": False}, "Houzz charges only processed orders"),
    ({"mark_charged": False}, "uncharged"),
])
def test_settings_problems_name_contradictions(settings: dict[str, Any], words: str) -> None:
    problems = HouzzSellerConnector.settings_problems(HouzzSellerSettings.model_validate(settings))
    assert any(words in p for p in problems), problems


def test_consistent_settings_have_no_problems() -> None:
    for settings in ({}, {"order_status": "Charged", "mark_processed": False, "mark_charged": False},
                     {"order_status": "In Production", "mark_processed": False}):
        assert HouzzSellerConnector.settings_problems(HouzzSellerSettings.model_validate(settings)) == []
