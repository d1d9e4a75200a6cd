"""SQLite ledger transactions take the write lock at BEGIN and leave no hook around each statement;
times are stored as SQLAlchemy's SQLite DATETIME text."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from orderbridge.ledger import db as ledger_db
from orderbridge.ledger.schema import UTCDateTime


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    eng = ledger_db.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    return eng


def _other_writer(engine: sa.Engine) -> sqlite3.Connection:
    return sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)


def test_a_transaction_holds_the_write_lock_from_its_begin(engine: sa.Engine) -> None:
    other = _other_writer(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one()  # a read only, so far
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")  # a second writer waits for (here: fails on) the first
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    other.execute("BEGIN IMMEDIATE")  # free again once committed
    other.execute("ROLLBACK")
    other.close()


def test_a_rolled_back_transaction_leaves_nothing(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("a step failed")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 0


def test_no_connection_events_run_around_each_statement(engine: sa.Engine) -> None:
    # A connection event (such as "begin") makes SQLAlchemy dispatch around every statement.
    assert engine._has_events is False


AT = [datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
      datetime(2026, 6, 30, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-7))), datetime(999, 1, 2, tzinfo=UTC)]


@pytest.mark.parametrize("at", AT, ids=str)
def test_times_are_stored_as_sqlalchemys_sqlite_datetime_text_and_read_back(engine: sa.Engine, at: datetime) -> None:
    table = sa.Table("times", sa.MetaData(), sa.Column("at", UTCDateTime()), sa.Column("plain", sa.DateTime()))
    table.create(engine)
    naive = at.astimezone(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(table.insert().values(at=at, plain=naive))
        stored, plain = conn.execute(sa.text("SELECT at, plain FROM times")).one()
        back = conn.execute(sa.select(table.c.at)).scalar_one()
        # Ordered and compared as text in queries: the same text the dialect's DATETIME writes.
        assert stored == plain
        assert back == at and back.tzinfo is UTC
        assert conn.execute(sa.select(sa.func.count()).where(table.c.at <= at)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).where(table.c.at < at)).scalar_one() == 0


def test_a_naive_time_is_refused(engine: sa.Engine) -> None:
    table = sa.Table("times2", sa.MetaData(), sa.Column("at", UTCDateTime()))
    table.create(engine)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(table.insert().values(at=datetime(2026, 12, 7)))
