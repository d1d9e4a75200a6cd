"""The web app's full route table, walked from the app objects themselves (so a new route is covered
by every test that uses this without anyone listing it), and a merchant's rows in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.routing import Mount, Route

from orderbridge.ledger import schema as t


@dataclass(frozen=True)
class Endpoint:
    path: str  # the full path template, e.g. /dashboard/orders/{oid}
    method: str
    mount: str  # "" for the top level, else the mount's prefix (/dashboard, /v1, /dashboard/static)

    @property
    def params(self) -> list[str]:
        return [seg[1:-1].split(":")[0] for seg in self.path.split("/") if seg.startswith("{")]


def _routes_of(app: Any) -> list[Any]:
    while not hasattr(app, "routes") and hasattr(app, "app"):  # through middleware wrappers
        app = app.app
    return list(getattr(app, "routes", []))


def route_table(app: Any, prefix: str = "", mount: str = "") -> list[Endpoint]:
    """Every (path, method) the app answers; a mount without routes of its own (static files) is one
    GET endpoint ``prefix/{path}``. HEAD, which Starlette adds to every GET, is left out."""
    found: list[Endpoint] = []
    for route in _routes_of(app):
        if isinstance(route, Mount):
            inner = _routes_of(route.app)
            if inner:
                found += route_table(route.app, prefix + route.path, prefix + route.path)
            else:
                found.append(Endpoint(prefix + route.path + "/{path}", "GET", prefix + route.path))
        elif isinstance(route, Route):
            found += [Endpoint(prefix + route.path, m, mount) for m in sorted(route.methods or ()) if m != "HEAD"]
        else:  # a Host, a WebSocketRoute ...: say so rather than leave it out of every check
            raise AssertionError(f"route_table does not know {type(route).__name__} routes ({route!r}): add them")
    return found


def fill(path: str, values: dict[str, str]) -> str:
    """The path with its {params} (and {param:converter}) replaced by ``values``."""
    out = []
    for seg in path.split("/"):
        out.append(values[seg[1:-1].split(":")[0]] if seg.startswith("{") else seg)
    return "/".join(out)


def _ids(conn: Any, query: Any) -> set[int]:
    return {int(i) for i in conn.execute(query).scalars()}


def merchant_rows(db: Engine, merchant: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ledger that belongs to the merchant, table by table: its own row, rows pointing at
    it, at its connections, orders or API keys (a warehouse key granted one of its connections included).
    Found through the tables' foreign keys, so a new table is included without being named here."""
    owners = {"merchants": "merchants", "connections": "connections", "orders": "orders", "api_keys": "api_keys"}
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with db.connect() as conn:
        c, k, g = t.connections, t.api_keys, t.api_key_grants
        mid = conn.execute(sa.select(t.merchants.c.id).where(t.merchants.c.name == merchant)).scalar_one()
        conns = _ids(conn, sa.select(c.c.id).where(c.c.merchant_id == mid))
        owned = {
            "merchants": {int(mid)},
            "connections": conns,
            "orders": _ids(conn, sa.select(t.orders.c.id).where(t.orders.c.connection_id.in_(conns))),
            "api_keys": _ids(conn, sa.select(k.c.id).where(k.c.merchant_id == mid)) |
            _ids(conn, sa.select(g.c.key_id).where(g.c.connection_id.in_(conns))),
        }
        for table in t.metadata.sorted_tables:
            clauses = []
            if table.name in owners:
                clauses.append(table.c.id.in_(owned[table.name]))
            for column in table.columns:
                for fk in column.foreign_keys:
                    if fk.column.table.name in owners:
                        clauses.append(column.in_(owned[fk.column.table.name]))
            if not clauses:
                continue
            order = [col for col in table.primary_key.columns]
            rows = conn.execute(sa.select(table).where(sa.or_(*clauses)).order_by(*order)).all()
            snapshot[table.name] = [tuple(r) for r in rows]
    return snapshot


def unowned_tables() -> list[str]:
    """Tables with no row a merchant owns (merchant_rows leaves them out)."""
    owners = {"merchants", "connections", "orders", "api_keys"}
    return [tb.name for tb in t.metadata.sorted_tables if tb.name not in owners and not any(
        fk.column.table.name in owners for col in tb.columns for fk in col.foreign_keys)]
