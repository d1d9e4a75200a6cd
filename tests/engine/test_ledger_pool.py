"""The PostgreSQL pool tests a connection that sat idle before handing it out, and only then."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from orderbridge.ledger import db as ledger_db
from tests.conftest import _pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


def backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def kill(url: str, pid: int) -> None:
    other = sa.create_engine(ledger_db._normalise(url), poolclass=sa.pool.NullPool)
    with other.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    other.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_db, "IDLE_PING_SECONDS", 0.0)  # every pooled connection counts as idle
    engine = ledger_db.create_engine(pg_url)
    try:
        first = backend_pid(engine)
        kill(pg_url, first)  # as a server restart or a dropped connection would
        second = backend_pid(engine)  # would raise without the ping: the pooled connection is dead
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(pg_url: str) -> None:
    engine = ledger_db.create_engine(pg_url)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    pings: list[int] = []
    original = engine.dialect.do_ping

    def counted_ping(dbapi_conn: object) -> bool:
        pings.append(1)
        return original(dbapi_conn)

    engine.dialect.do_ping = counted_ping
    try:
        for _ in range(20):
            with engine.begin() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert pings == []
        assert len(statements) == 20
    finally:
        engine.dispose()
