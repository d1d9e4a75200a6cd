"""SQLite ledger transactions take the write lock at BEGIN, and leave no hook around each statement."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from orderbridge.ledger import db as ledger_db


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
