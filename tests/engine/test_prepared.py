"""Statements built once run straight on the driver (ledger/prepared.py), on SQLite and on
PostgreSQL: the same rows, values, transaction and errors as through ``Connection.execute``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from orderbridge.ledger import db as ledger_db
from orderbridge.ledger import prepared
from orderbridge.ledger.prepared import ROW_ID, FastResult, update_by_id
from orderbridge.ledger.schema import UTCDateTime

META = sa.MetaData()
ITEMS = sa.Table(
    "items", META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False, default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("ok", sa.Boolean, nullable=False, default=False),
    sa.Column("data", sa.JSON, nullable=False, default=dict),
    sa.Column("price", sa.Numeric(14, 4), nullable=False, default=0),
    sa.Column("at", UTCDateTime, nullable=True),
)
AT = datetime(2026, 12, 7, 8, 9, 10, 123456, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = ledger_db.create_engine(db_url)
    META.create_all(eng)
    with eng.begin() as conn:
        conn.execute(ITEMS.insert(), [
            {"name": f"item-{i}", "state": "pending", "attempts": i, "ok": i % 2 == 0, "data": {"n": i, "tags": ["a"]},
             "price": Decimal("1.2500") * i, "at": AT if i % 2 else None} for i in range(1, 5)])
    yield eng
    eng.dispose()


@functools.cache
def _select() -> Any:
    return sa.select(ITEMS).where(ITEMS.c.id >= sa.bindparam(ROW_ID)).order_by(ITEMS.c.id)


@functools.cache
def _claim() -> Any:
    return (ITEMS.update().where(ITEMS.c.id == sa.bindparam(ROW_ID), ITEMS.c.state == "pending")
            .values(state="in_flight", attempts=ITEMS.c.attempts + 1))


@functools.cache
def _release() -> Any:
    return ITEMS.update().where(ITEMS.c.name == sa.bindparam("b_name")).values(state="pending").returning(ITEMS.c.id)


@functools.cache
def _insert() -> Any:
    return ITEMS.insert()


def test_rows_read_the_same_as_through_sqlalchemy(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        fast = prepared.execute(conn, _select(), {ROW_ID: 2})
        slow = conn.execute(_select(), {ROW_ID: 2}).all()
        assert isinstance(fast, FastResult)  # the driver's path was taken
        rows = fast.all()
        assert [tuple(r) for r in rows] == [tuple(r) for r in slow]
        assert [r._mapping for r in rows] == [dict(r._mapping) for r in slow]
        first = rows[0]
        # Types come back as their types make them: bool, JSON, Decimal, aware UTC datetime.
        assert (first.ok, first.data, first.price, first.at) == (True, {"n": 2, "tags": ["a"]}, Decimal("2.5"), None)
        assert rows[1].at == AT and rows[1].at.tzinfo is UTC
        assert prepared.execute(conn, _select(), {ROW_ID: 4}).one().name == "item-4"
        assert prepared.execute(conn, _select(), {ROW_ID: 9}).first() is None
        assert prepared.execute(conn, _select(), {ROW_ID: 3}).scalars().all() == [3, 4]


def test_an_update_binds_the_values_built_in_and_given(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert prepared.execute(conn, _claim(), {ROW_ID: 2, "at": AT}).rowcount == 1
        assert prepared.execute(conn, _claim(), {ROW_ID: 2, "at": AT}).rowcount == 0  # no longer pending
        prepared.execute(conn, update_by_id(ITEMS), {ROW_ID: 3, "data": {"x": None}, "ok": True})
        assert prepared.execute(conn, _release(), {"b_name": "item-2"}).scalar() == 2
    with engine.connect() as conn:
        two, three = conn.execute(sa.select(ITEMS).where(ITEMS.c.id.in_([2, 3])).order_by(ITEMS.c.id)).all()
    assert (two.state, two.attempts, two.at) == ("pending", 3, AT)
    assert (three.data, three.ok) == ({"x": None}, True)


def test_many_rows_inserted_in_one_executemany(engine: sa.Engine) -> None:
    rows = [{"name": f"new-{i}", "state": "done", "attempts": 0, "ok": True, "data": [i], "price": 0, "at": AT}
            for i in range(3)]
    with engine.begin() as conn:
        assert prepared.execute(conn, _insert(), rows).rowcount == 3
    with engine.connect() as conn:
        got = conn.execute(sa.select(ITEMS.c.name, ITEMS.c.data).where(ITEMS.c.name.like("new-%"))
                           .order_by(ITEMS.c.name)).all()
    assert [tuple(r) for r in got] == [("new-0", [0]), ("new-1", [1]), ("new-2", [2])]


def test_outside_a_transaction_it_begins_one_and_nothing_is_kept_unless_committed(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        prepared.execute(conn, update_by_id(ITEMS), {ROW_ID: 1, "state": "done"})
        assert conn.in_transaction()
        conn.rollback()
    with engine.connect() as conn:
        assert conn.execute(sa.select(ITEMS.c.state).where(ITEMS.c.id == 1)).scalar_one() == "pending"


def test_driver_errors_are_sqlalchemys_and_roll_back(engine: sa.Engine) -> None:
    row = {"name": "item-1", "state": "done", "attempts": 0, "ok": True, "data": {}, "price": 0, "at": None}
    with pytest.raises(sa.exc.IntegrityError, match=r"(?i)unique"), engine.begin() as conn:
        prepared.execute(conn, update_by_id(ITEMS), {ROW_ID: 2, "state": "done"})
        prepared.execute(conn, _insert(), row)
    with engine.connect() as conn:
        assert conn.execute(sa.select(ITEMS.c.state).where(ITEMS.c.id == 2)).scalar_one() == "pending"


def test_what_it_does_not_handle_goes_through_sqlalchemy(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        # Column defaults to fill in (state, attempts, ...): SQLAlchemy's result, its inserted key.
        result = prepared.execute(conn, _insert(), {"name": "defaults"})
        assert not isinstance(result, FastResult) and result.inserted_primary_key[0] == 5
        assert conn.execute(sa.select(ITEMS.c.state, ITEMS.c.data).where(ITEMS.c.id == 5)).one() == ("pending", {})
        # A missing value: SQLAlchemy's error naming it.
        with pytest.raises(sa.exc.StatementError, match="row_id"):
            prepared.execute(conn, _claim(), {"at": AT})
        # An IN list is rendered at execution.
        in_list = sa.select(ITEMS.c.id).where(ITEMS.c.name.in_(sa.bindparam("names", expanding=True)))
        assert prepared.execute(conn, in_list, {"names": ["item-1", "item-3"]}).scalars().all() == [1, 3]


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_lost_connection_is_invalidated_as_sqlalchemy_would(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(sa.exc.DBAPIError) as caught:
            prepared.execute(conn, _select(), {ROW_ID: 1})
        assert caught.value.connection_invalidated
        assert conn.invalidated
    with engine.connect() as conn:  # the pool hands out a live connection again
        assert prepared.execute(conn, _select(), {ROW_ID: 4}).one().name == "item-4"


def test_an_engine_whose_statements_are_watched_keeps_sqlalchemys_way(engine: sa.Engine) -> None:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with engine.begin() as conn:
        result = prepared.execute(conn, _select(), {ROW_ID: 4})
        assert not isinstance(result, FastResult) and result.one().name == "item-4"
    assert len(seen) == 1 and seen[0].startswith("SELECT")
