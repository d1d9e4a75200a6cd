"""Order view, status and list: the same at cart and merchant level, within the caller's scope."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.responses import JSONResponse

from orderbridge.api import queries
from orderbridge.api.envelope import ok
from orderbridge.api.parsing import date_param, flag, paging
from orderbridge.api.records import order_record, status_record
from orderbridge.api.routing import Call
from orderbridge.ledger import schema as t

LIST_QUERY = ("limit", "page", "from_date", "to_date", "order_source", "include_filtered_items",
              "include_order_extras", "include_line_extras", "include_aliases")
VIEW_QUERY = ("include_filtered_items", "include_order_extras", "include_line_extras", "include_aliases")


def _aliases(conn: Connection, merchant_ids: list[int]) -> dict[str, list[str]]:
    a = t.sku_aliases
    out: dict[str, list[str]] = {}
    for alias, sku in conn.execute(sa.select(a.c.alias, a.c.sku).where(a.c.merchant_id.in_(merchant_ids))
                                   .order_by(a.c.id)):
        out.setdefault(sku, []).append(alias)
    return out


def records(call: Call, conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    flag(call.request, "include_filtered_items")  # no line is ever filtered out: validated, then moot
    extras, line_extras = flag(call.request, "include_order_extras"), flag(call.request, "include_line_extras")
    aliases = _aliases(conn, call.scope.merchant_ids) if flag(call.request, "include_aliases") else None
    ships = queries.shipments_of(conn, [int(r.id) for r in rows])
    cart_level = call.scope.source_id is not None
    return [order_record(r, ships[int(r.id)], cart_level=cart_level, order_extras=extras, line_extras=line_extras,
                         aliases=aliases) for r in rows]


def view(call: Call) -> JSONResponse:
    with call.hub.db.connect() as conn:
        row = queries.find_order(conn, call.scope, call.param("cust_ref"))
        return ok(records(call, conn, [row])[0])


def status(call: Call) -> JSONResponse:
    with call.hub.db.connect() as conn:
        row = queries.find_order(conn, call.scope, call.param("cust_ref"))
        record = order_record(row, queries.shipments_of(conn, [int(row.id)])[int(row.id)],
                              cart_level=call.scope.source_id is not None)
    return ok(status_record(record))


def listing(call: Call) -> JSONResponse:
    page = paging(call.request)
    since = date_param(call.request, "from_date")
    until = date_param(call.request, "to_date", end_of_day=True)
    with call.hub.db.connect() as conn:
        found = queries.list_orders(conn, call.scope, call.param("status"), page, since, until,
                                    call.request.query_params.get("order_source") or None)
        body = records(call, conn, found.rows)
    response = ok(body)
    response.headers["total-records"] = str(found.total)
    return response
