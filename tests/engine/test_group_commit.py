"""Group commit: concurrent small writes share a transaction, each caller resumes only once its
write is committed, and one failing write never takes the others down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from orderbridge.engine.group_commit import GroupCommit
from orderbridge.ledger.db import create_engine
from tests.conftest import _pg_database

meta = sa.MetaData()
notes = sa.Table("notes", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(50)))


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    # Both paths: on SQLite the group runs on the event loop and its commit in a thread; on
    # PostgreSQL the whole group runs in the thread.
    eng = create_engine(db_url)
    meta.create_all(eng)
    yield eng
    eng.dispose()


def add(conn: sa.Connection, text: str) -> int:
    key = conn.execute(notes.insert().values(text=text)).inserted_primary_key
    assert key is not None
    return int(key[0])


def visible(engine: sa.Engine, text: str) -> bool:
    with engine.connect() as conn:  # another connection: sees only what is committed
        return conn.execute(sa.select(notes.c.id).where(notes.c.text == text)).first() is not None


def test_concurrent_writes_commit_together_and_resume_only_when_durable(engine: sa.Engine) -> None:
    commits = []
    sa.event.listen(engine, "commit", lambda conn: commits.append(1))

    async def main() -> list[bool]:
        gc = GroupCommit(engine)

        async def write(i: int) -> bool:
            await gc.run(lambda conn: conn.execute(notes.insert().values(text=f"n{i}")))
            return visible(engine, f"n{i}")

        first = await asyncio.gather(*(write(i) for i in range(30)))
        # Writes that arrive while a group is being committed form the next group.
        second = await asyncio.gather(*(write(i) for i in range(30, 60)))
        return first + second

    assert asyncio.run(main()) == [True] * 60
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar_one() == 60
    assert 2 <= len(commits) <= 10, commits  # 60 writes, a few transactions


def test_a_failing_write_fails_alone(engine: sa.Engine) -> None:
    async def main() -> list[object]:
        gc = GroupCommit(engine)

        def bad(conn: sa.Connection) -> None:
            conn.execute(notes.insert().values(text="bad"))
            raise ValueError("refused")

        return await asyncio.gather(
            gc.run(lambda conn: add(conn, "a")),
            gc.run(bad),
            gc.run(lambda conn: add(conn, "b")),
            return_exceptions=True)

    outcome = asyncio.run(main())
    assert isinstance(outcome[0], int) and isinstance(outcome[2], int) and isinstance(outcome[1], ValueError)
    assert visible(engine, "a") and visible(engine, "b") and not visible(engine, "bad")


def test_a_failed_shared_commit_falls_back_to_one_transaction_each(engine: sa.Engine) -> None:
    failures = {"left": 1}

    def fail_once(conn: sa.Connection) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sa.exc.OperationalError("COMMIT", {}, Exception("database is locked"))

    sa.event.listen(engine, "commit", fail_once)

    async def main() -> list[int]:
        gc = GroupCommit(engine)
        return list(await asyncio.gather(*(
            gc.run(lambda conn, i=i: add(conn, f"r{i}"))
            for i in range(5))))

    assert len(set(asyncio.run(main()))) == 5  # five rows, five ids
    assert all(visible(engine, f"r{i}") for i in range(5))


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    for url in _pg_database():
        eng = create_engine(url)
        meta.create_all(eng)
        yield eng
        eng.dispose()


@pytest.mark.postgres
def test_on_postgresql_groups_overlap_and_each_write_is_committed_once(pg_engine: sa.Engine) -> None:
    # (SQLite has one writer: one group at a time there.)
    engine = pg_engine
    in_flight, peak = [0], [0]

    def slow_add(conn: sa.Connection, text: str) -> int:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        conn.execute(sa.text("SELECT pg_sleep(0.05)"))
        in_flight[0] -= 1
        return add(conn, text)

    async def main() -> list[int]:
        gc = GroupCommit(engine)

        async def write(i: int) -> int:
            await asyncio.sleep(i * 0.01)  # arriving one by one while earlier groups are in flight
            return await gc.run(lambda conn: slow_add(conn, f"o{i}"))

        return list(await asyncio.gather(*(write(i) for i in range(40))))

    ids = asyncio.run(main())
    assert len(set(ids)) == 40
    assert peak[0] > 1, "groups were committed strictly one after another"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar_one() == 40


def test_a_groups_order_events_go_in_together_and_a_failing_write_takes_its_own(make_hub: Any) -> None:
    """The writes' order events are inserted in one statement at the group's end; a write that
    fails leaves no event behind, the others' events are all there."""
    from orderbridge.engine.intake import store_items
    from orderbridge.engine.timeline import event
    from orderbridge.ledger import schema as t
    from tests.conftest import shop_config
    from tests.support.heavy_writes import order

    hub = make_hub(shop_config("http://127.0.0.1:9"))
    with hub.db.connect() as conn:
        source = hub.connection(conn, "shop")
    store_items(hub, source, [order("E-1"), order("E-2")], "test")
    with hub.db.connect() as conn:
        ids = dict(conn.execute(sa.select(t.orders.c.external_id, t.orders.c.id)).all())
    inserts: list[str] = []
    sa.event.listen(hub.db, "before_cursor_execute",
                    lambda *args: inserts.append(args[2]) if "INSERT INTO order_events" in args[2] else None)

    def noted(external_id: str, text: str, fail: bool = False) -> Any:
        def write(conn: sa.Connection) -> None:
            event(conn, ids[external_id], "note", text)
            if fail:
                raise ValueError("refused")
        return write

    async def main() -> tuple[list[object], list[object]]:
        gc = GroupCommit(hub.db)
        together = await asyncio.gather(*(gc.run(noted(f"E-{1 + i % 2}", f"n{i}")) for i in range(6)))
        one_fails = await asyncio.gather(gc.run(noted("E-1", "first")), gc.run(noted("E-2", "second")),
                                         gc.run(noted("E-1", "refused", fail=True)), return_exceptions=True)
        return together, one_fails

    inserted_before = len(inserts)
    together, one_fails = asyncio.run(main())
    assert together == [None] * 6
    assert one_fails[:2] == [None, None] and isinstance(one_fails[2], ValueError)
    with hub.db.connect() as conn:
        kept = sorted(conn.execute(
            sa.select(t.order_events.c.message).where(t.order_events.c.kind == "note")).scalars())
    assert kept == ["first", "n0", "n1", "n2", "n3", "n4", "n5", "second"]
    # Six writes, one group: one INSERT. Then the group with the refused write is rolled back and
    # each write runs alone: one INSERT for each write that succeeds.
    assert len(inserts) - inserted_before == 1 + 2, inserts


def test_the_hubs_ledger_work_joins_the_steps_group_on_sqlite(make_hub: Any, db_url: str) -> None:
    """On SQLite, ledger work (``Hub.in_ledger``) issued with steps' writes is committed with them,
    in one transaction (the event loop never waits for the write lock or the disk itself); on
    PostgreSQL it has a transaction of its own, in a thread. Either way it is committed when the
    call returns, and a nested ``events_together`` (a shipment page's) joins the group's."""
    from orderbridge.engine.group_commit import group_commit
    from orderbridge.engine.intake import store_items
    from orderbridge.engine.timeline import event, events_together
    from orderbridge.ledger import schema as t
    from tests.conftest import shop_config
    from tests.support.heavy_writes import order

    hub = make_hub(shop_config("http://127.0.0.1:9"))
    with hub.db.connect() as conn:
        source = hub.connection(conn, "shop")
    store_items(hub, source, [order("L-1")], "test")
    with hub.db.connect() as conn:
        oid = conn.execute(sa.select(t.orders.c.id)).scalar_one()
    commits: list[int] = []
    sa.event.listen(hub.db, "commit", lambda conn: commits.append(1))

    def ledger_work(conn: sa.Connection) -> str:
        event(conn, oid, "note", "ledger work")
        with events_together(conn):
            event(conn, oid, "note", "joined")
        return "worked"

    def seen(conn: sa.Connection) -> list[str]:
        return sorted(conn.execute(sa.select(t.order_events.c.message).where(
            t.order_events.c.kind == "note")).scalars())

    async def main() -> list[Any]:
        async def then_look(call: Any) -> Any:
            value = await call
            with hub.db.connect() as other:  # committed by now: another connection sees it
                return value, seen(other)

        return list(await asyncio.gather(
            then_look(hub.in_ledger(ledger_work)),
            then_look(group_commit(hub).run(lambda conn: event(conn, oid, "note", "step"))),
        ))

    (worked, seen_after_work), (_, seen_after_step) = asyncio.run(main())
    assert worked == "worked"
    assert {"ledger work", "joined"} <= set(seen_after_work)
    assert "step" in seen_after_step
    with hub.db.connect() as conn:
        assert seen(conn) == ["joined", "ledger work", "step"]
    if db_url.startswith("sqlite"):
        assert len(commits) == 1, "the ledger work and the step's write were not committed together"
    else:
        assert len(commits) == 2
