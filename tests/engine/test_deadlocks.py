"""A ledger transaction the server aborts to break a deadlock is run again (engine/deadlocks.py),
on a real PostgreSQL server: two transactions lock the same two rows in opposite orders."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from orderbridge.engine.hub import Hub
from orderbridge.ledger.db import create_engine
from tests.conftest import _pg_database


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    for url in _pg_database():
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)")
            conn.exec_driver_sql("INSERT INTO pair VALUES (1, 0), (2, 0)")
        try:
            yield engine
        finally:
            engine.dispose()


def _waiting_for_a_lock(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar_one())


def _bump(conn: Connection, row: int) -> None:
    conn.execute(sa.text("UPDATE pair SET n = n + 1 WHERE id = :id"), {"id": row})


@pytest.mark.postgres
def test_the_deadlock_victim_runs_again_and_both_transactions_commit(pg_engine: Engine) -> None:
    first_locked = threading.Event()
    other_done: list[BaseException | None] = []

    def other() -> None:
        # Locks row 1, then (once the hub's transaction waits for row 1) row 2. Its deadlock check
        # comes later than the hub transaction's, so the server aborts the hub's.
        try:
            with pg_engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL deadlock_timeout = '10s'")
                _bump(conn, 1)
                first_locked.set()
                deadline = time.monotonic() + 20
                while _waiting_for_a_lock(pg_engine) < 1:
                    assert time.monotonic() < deadline, "the hub's transaction never waited for row 1"
                    time.sleep(0.02)
                _bump(conn, 2)
            other_done.append(None)
        except BaseException as exc:  # reported to the test below
            other_done.append(exc)

    attempts = 0

    def work(conn: Connection) -> str:
        nonlocal attempts
        attempts += 1
        _bump(conn, 2)
        if attempts == 1:
            assert first_locked.wait(20)
        _bump(conn, 1)  # waits for the other transaction, which then waits for this one
        return "done"

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert first_locked.wait(20)
        result = asyncio.run(Hub(db=pg_engine).in_transaction(work))
    finally:
        thread.join(30)
    assert other_done == [None]
    assert result == "done" and attempts == 2  # aborted once, then run again from the start
    with pg_engine.connect() as conn:
        assert dict(conn.exec_driver_sql("SELECT id, n FROM pair").all()) == {1: 2, 2: 2}  # both committed once
