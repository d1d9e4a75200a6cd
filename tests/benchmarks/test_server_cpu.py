"""The PostgreSQL server's CPU for a run's ledger (benchmarks/server_cpu.py), read against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from benchmarks.server_cpu import ServerCpu

from orderbridge.ledger.db import _normalise
from tests.conftest import _pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


def _burn(engine: sa.Engine, rows: int) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM generate_series(1, :n) AS g(i) WHERE i % 7 = 3"), {"n": rows})


@pytest.mark.postgres
def test_the_work_of_the_database_s_backends_is_counted_from_the_start(pg_url: str) -> None:
    engine = sa.create_engine(_normalise(pg_url), pool_size=1)  # keeps its connection: a long-lived backend
    try:
        _burn(engine, 3_000_000)  # before the start: not counted
        cpu = ServerCpu.of(pg_url)
        assert cpu is not None
        try:
            cpu.start()
            assert cpu.seconds() == pytest.approx(0.0, abs=0.02)
            _burn(engine, 6_000_000)
            cpu.sample()
            spent = cpu.seconds()
            assert spent is not None and spent > 0.2
            # A backend born after the start counts from zero; sampled before it closes, its work stays.
            other = sa.create_engine(_normalise(pg_url), pool_size=1)
            try:
                _burn(other, 6_000_000)
                cpu.sample()
            finally:
                other.dispose()
            after = cpu.seconds()
            assert after is not None and after > spent + 0.2
            cpu.close()  # as the bench does before dropping the database: a late sample reads nothing more
            _burn(engine, 3_000_000)
            cpu.sample()
            assert cpu.seconds() == after
        finally:
            cpu.close()
    finally:
        engine.dispose()


def test_no_figure_for_sqlite_or_a_server_on_another_machine() -> None:
    assert ServerCpu.of("sqlite:///ledger.sqlite") is None
    assert ServerCpu.of("postgresql://ob@db.example.com:5432/ledger") is None
    local = ServerCpu.of("postgresql://ob@127.0.0.1:5432/ledger")
    assert local is not None
    local.close()
