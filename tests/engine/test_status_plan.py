"""An order's status set in one statement reads only that order's rows on PostgreSQL, even in a
ledger whose tables were never analysed (a new one: the planner then guesses, and a connection
keeps the generic plan it made as the tables grow). Seen in the bench: a hash of every
confirmation built at each status update, then every confirmation made read through the index of
due rows; each O(orders) per order."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from typing import Any

import pytest

from orderbridge.domain.models import OrderStatus, utcnow
from orderbridge.engine.orders import _plainly
from orderbridge.ledger.db import open_ledger
from orderbridge.ledger.prepared import ROW_ID
from tests.conftest import _pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


def _generic_plan(conn: Any, sql: str, params: dict[str, Any]) -> str:
    """EXPLAIN of the plan PostgreSQL keeps for a prepared statement run many times."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql("PREPARE guarded AS " + re.sub(r"%\((\w+)\)s", number, sql))
    values = [v.value if isinstance(v, enum.Enum) else v for v in (params[n] for n in names)]
    literals = ", ".join("NULL" if v is None else repr(str(v)) for v in values)
    return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE guarded({literals})"))


@pytest.mark.postgres
@pytest.mark.parametrize("status", [OrderStatus.AT_WMS, OrderStatus.SHIPPED, OrderStatus.CONFIRMED])
def test_the_guarded_status_update_looks_up_the_order_s_rows_by_its_key(pg_url: str, status: OrderStatus) -> None:
    db = open_ledger(pg_url)
    try:
        stmt = _plainly(status).compile(dialect=db.dialect)
        params = {**stmt.params, ROW_ID: 1, "at": utcnow().replace(tzinfo=None)}
        with db.connect() as conn:
            # Confirmations made for 600 orders, the tables never analysed (their orders need not
            # exist for the planner: the foreign keys' checks are off for these rows).
            conn.exec_driver_sql("SET session_replication_role = replica")
            conn.exec_driver_sql(
                "INSERT INTO confirmations (order_id, key, shipment_ids, note, state, attempts, last_error) "
                "SELECT g, 'order', '[]', '', 'done', 1, '' FROM generate_series(1, 600) AS g")
            plan = _generic_plan(conn, str(stmt), params)
            conn.rollback()
    finally:
        db.dispose()
    assert "hashed SubPlan" not in plan, plan
    assert "Seq Scan on confirmations" not in plan, plan
    assert "ix_confirmations_due" not in plan, plan  # every confirmation in a state, not the order's
