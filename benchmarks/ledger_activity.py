"""What a run asked of its PostgreSQL ledger, per order: transactions, and rows written and read
(``rows_read``: the rows its sequential scans went through and the entries its index scans
returned; ``rows_fetched``: the rows those index scans then fetched).

The server counts these for each database (``pg_stat_database``). Read before the hub starts and
after it has stopped (its connections closed, so that every backend has reported its counts), the
difference is the run's, at no cost to it. Unlike times and CPU seconds they do not move with the
machine's speed: a change that saves ledger work shows in them on a noisy day. The bench's own
reads of the database (the server CPU sampler: a short transaction a second) count too, a few
hundredths of a transaction per order. SQLite keeps no such counts: no figure there.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.server_cpu import OTHER_SESSIONS
from orderbridge.ledger.db import _normalise

COUNTS = sa.text(
    "SELECT xact_commit + xact_rollback AS transactions, xact_rollback AS rolled_back, "
    "tup_inserted AS rows_inserted, tup_updated AS rows_updated, tup_deleted AS rows_deleted, "
    "tup_returned AS rows_read, tup_fetched AS rows_fetched FROM pg_stat_database "
    "WHERE datname = current_database()")
SETTLE_SECONDS = 5.0


def ledger_counts(url: str, settle: float = SETTLE_SECONDS) -> dict[str, int] | None:
    """The database's counts so far (None unless it is PostgreSQL), once no other session is
    connected to it (a closing backend reports its counts as it ends), or after ``settle`` seconds."""
    if sa.make_url(_normalise(url)).get_backend_name() != "postgresql":
        return None
    engine = sa.create_engine(_normalise(url), poolclass=NullPool)
    try:
        deadline = time.monotonic() + settle
        with engine.connect() as conn:
            while conn.execute(OTHER_SESSIONS).first() is not None and time.monotonic() < deadline:
                conn.rollback()  # a fresh snapshot of the statistics for the next look
                time.sleep(0.05)
            conn.rollback()
            return {k: int(v) for k, v in conn.execute(COUNTS).one()._mapping.items()}
    finally:
        engine.dispose()


def per_order(before: dict[str, int], after: dict[str, int], orders: int) -> dict[str, float]:
    """The run's counts per order."""
    return {k: round((after[k] - before[k]) / max(orders, 1), 2) for k in before}
