"""A run's ledger work counted by the PostgreSQL server (benchmarks/ledger_activity.py), read
against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from benchmarks.ledger_activity import ledger_counts, per_order

from orderbridge.ledger.db import _normalise
from tests.conftest import _pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.mark.postgres
def test_the_transactions_and_rows_of_the_sessions_since_the_first_read_are_counted(pg_url: str) -> None:
    engine = sa.create_engine(_normalise(pg_url))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY, v int)"))
        conn.execute(sa.text("INSERT INTO t SELECT g, 0 FROM generate_series(1, 3) AS g"))  # before: not counted
    engine.dispose()
    before = ledger_counts(pg_url)
    assert before is not None
    engine = sa.create_engine(_normalise(pg_url))
    for first in (10, 20, 30):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t SELECT g, 0 FROM generate_series(:a, :a + 4) AS g"), {"a": first})
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE t SET v = 1 WHERE id IN (1, 2, 10, 11)"))
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM t WHERE id IN (3, 12)"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1, 0)"))  # rolled back
    engine.dispose()  # its sessions end and report what they did
    after = ledger_counts(pg_url)
    assert after is not None
    run = per_order(before, after, 1)
    # 15 rows, and the one of the rolled-back insert: the server wrote it before the key check failed
    assert (run["rows_inserted"], run["rows_updated"], run["rows_deleted"]) == (16, 4, 2)
    assert 6 <= run["transactions"] <= 12  # the six above and the reads' own
    assert run["rolled_back"] >= 1
    assert per_order(before, after, 4)["rows_inserted"] == 4.0


@pytest.mark.postgres
def test_a_session_still_connected_is_waited_for_a_while(pg_url: str) -> None:
    engine = sa.create_engine(_normalise(pg_url))
    with engine.connect() as conn:  # stays connected: the read waits for it, then reads what is known
        conn.execute(sa.text("SELECT 1")).scalar()
        assert ledger_counts(pg_url, settle=0.3) is not None
    engine.dispose()


def test_no_counts_on_sqlite() -> None:
    assert ledger_counts("sqlite:///ledger.sqlite") is None
