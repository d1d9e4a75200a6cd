"""Polls re-read every open Houzz order; the ones the ledger holds as they are cost a digest, not
a mapping, and nothing read but not stored is ever passed over."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from houzz_support import Admin
from test_houzz_engine import make_hub, wms  # noqa: F401 - the WMS sandbox fixture

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
    with hub.db.connect() as conn:
        row = next(r for r in hub.connections(conn) if r.name == "houzz")
    return len(hub.source(row).stored_reads)


def test_unchanged_rereads_are_passed_over_and_changes_are_read(
        tmp_path: Any, url: str, admin: Admin, wms: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    acc = admin.account()
    a = acc["acct"]
    first = [admin.order(a) for _ in range(6)]
    # One hub and one event loop for every poll, as the runner keeps them: its connectors (and
    # their digests) live on between runs.
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
