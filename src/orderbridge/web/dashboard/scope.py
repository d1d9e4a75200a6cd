"""What a user may see: an administrator sees every merchant, a merchant's user only theirs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException

from orderbridge.engine.hub import ConnectionRow
from orderbridge.engine.users import User
from orderbridge.ledger import schema as t


def merchant_clause(user: User, column: Any) -> Any:
    """A WHERE clause limiting ``column`` (a merchant id) to the user's merchants."""
    return sa.true() if user.is_admin else column == user.merchant_id


def merchants(conn: Connection, user: User) -> list[tuple[int, str]]:
    m = t.merchants
    return [(int(i), str(n)) for i, n in conn.execute(
        sa.select(m.c.id, m.c.name).where(merchant_clause(user, m.c.id)).order_by(m.c.name))]


def connection(conn: Connection, hub: Any, user: User, name: str) -> ConnectionRow:
    """A connection the user may see, or 404 (the same answer whether it exists or not)."""
    c = t.connections
    cid = conn.execute(sa.select(c.c.id).where(c.c.name == name, merchant_clause(user, c.c.merchant_id))).scalar()
    if cid is None:
        raise HTTPException(404, f"no connection named {name!r}")
    row: ConnectionRow = hub.connection(conn, int(cid))
    return row


def merchant_name_allowed(conn: Connection, user: User, name: str) -> bool:
    if user.is_admin:
        return True
    mid = conn.execute(sa.select(t.merchants.c.id).where(t.merchants.c.name == name)).scalar()
    return mid == user.merchant_id
