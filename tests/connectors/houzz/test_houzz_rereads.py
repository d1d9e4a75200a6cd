"""Polls re-read every open Houzz order; the ones the ledger holds as they are cost a digest, not
a mapping, and nothing read but not stored is ever passed over. The digests are the ledger's
(orders.raw_digest): a new hub passes over what an earlier one stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from houzz_support import Admin
from test_houzz_engine import make_hub, wms  # noqa: F401 - the WMS sandbox fixture

from orderbridge.domain.models import utcnow
from orderbridge.engine.hub import Hub
from orderbridge.engine.jobs import RunResult, run_job
from orderbridge.ledger import schema as t


async def download(hub: Hub) -> RunResult:
    with hub.db.connect() as conn:
        row = next(r for r in hub.connections(conn) if r.name == "houzz")
    return await run_job(hub, row, "download")


def held(hub: Hub) -> dict[str, str]:
    with hub.db.connect() as conn:
        return {r.external_id: r.source_status for r in conn.execute(
            sa.select(t.orders.c.external_id, t.orders.c.source_status))}


def digests(hub: Hub) -> int:
    """Orders stored with the digest of their raw entry as read."""
    with hub.db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(t.orders.c.raw_digest.is_not(None))).scalar_one())


def test_unchanged_rereads_are_passed_over_and_changes_are_read(
        tmp_path: Any, url: str, admin: Admin, wms: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    acc = admin.account()
    a = acc["acct"]
    first = [admin.order(a) for _ in range(6)]
    hub = make_hub(tmp_path, url, acc, wms.url, {})

    async def polls() -> None:
        run = await download(hub)
        assert run.status == "ok" and run.processed == 6 and "6 new" in run.notes, run
        assert digests(hub) == 6

        # The overlap window re-reads all six: unchanged, they are not mapped or compared again.
        run = await download(hub)
        assert run.status == "ok" and run.processed == 0 and run.notes == "", run

        # A change at Houzz (here its status, moved by hand) is read and stored.
        admin.set_status(a, first[0], "InProduction")
        run = await download(hub)
        assert run.status == "ok" and run.notes == "1 same", run  # a status alone: nothing to redeliver
        assert held(hub)[first[0]] == "InProduction"
        # Its digest went in with the update: the next poll passes over it as over the others.
        run = await download(hub)
        assert run.status == "ok" and run.processed == 0 and run.notes == "", run

        # Orders read but not stored (the intake's transaction fails) are read again on the next poll.
        later = [admin.order(a) for _ in range(3)]

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the ledger refused the write")

        monkeypatch.setattr(hub, "wake", refuse)
        run = await download(hub)
        assert run.status == "failed" and "ledger refused" in run.error, run
        assert not set(later) & set(held(hub)) and digests(hub) == 6
        monkeypatch.undo()
        run = await download(hub)
        assert run.status == "ok" and run.notes == "3 new", run
        assert set(later) <= set(held(hub)) and digests(hub) == 9
        await hub.aclose()

    asyncio.run(polls())

    async def restarted() -> None:
        # A hub started afresh (a restart, another worker) passes over what the first one stored.
        again = Hub(db=hub.db, runner=hub.runner, secrets=hub.box(), budget=hub.budget, http_timeout=5)
        run = await download(again)
        assert run.status == "ok" and run.processed == 0 and run.notes == "", run
        # A change of the connection's mapping settings (as `orderbridge connections` makes one)
        # maps every order again, once.
        with again.db.begin() as conn:
            c = t.connections
            conn.execute(c.update().where(c.c.name == "houzz").values(
                settings={"earliest_order_date": "2020-01-01"}, updated_at=utcnow()))
        run = await download(again)
        assert run.status == "ok" and run.notes == "9 same", run
        run = await download(again)
        assert run.status == "ok" and run.notes == "", run
        await again.aclose()

    asyncio.run(restarted())
