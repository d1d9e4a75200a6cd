"""`orderbridge orders ...`: find, inspect, retry, cancel and re-pull orders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table

from orderbridge.cli.common import ConfigOpt, JsonOpt, console, open_hub, print_json, run_async
from orderbridge.connectors.errors import ConfigError
from orderbridge.engine.operations import cancel_sending, find_order, retry_order
from orderbridge.ledger import schema as t

app = typer.Typer(help="Orders in the ledger.", no_args_is_help=True)


@app.command("list")
def list_orders(
    config: ConfigOpt = None,
    status: Annotated[
        str | None, typer.Option(help="new, at_wms, partial, shipped, confirmed, error, canceled")
    ] = None,
    connection: Annotated[str | None, typer.Option(help="Only orders of this source connection.")] = None,
    search: Annotated[str | None, typer.Option(help="Order number, customer or SKU.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List orders, newest first."""
    hub, _ = open_hub(config, apply=False)
    o, c = t.orders, t.connections
    q = (sa.select(o.c.id, o.c.external_id, o.c.cust_po_no, o.c.cust_ref, o.c.status, o.c.customer_name,
                   o.c.order_date, o.c.error_message, c.c.name.label("connection"))
         .join(c, c.c.id == o.c.connection_id).order_by(o.c.id.desc()).limit(limit))
    if status:
        q = q.where(o.c.status == status)
    if connection:
        q = q.where(c.c.name == connection)
    if search:
        like = f"%{search}%"
        q = q.where(sa.or_(o.c.cust_po_no.like(like), o.c.customer_name.like(like), o.c.external_id.like(like),
                           o.c.id.in_(sa.select(t.order_lines.c.order_id).where(t.order_lines.c.sku == search))))
    with hub.db.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "connection", "order no", "cust_ref", "status", "customer", "problem")
    for r in rows:
        table.add_row(str(r["id"]), r["connection"], r["cust_po_no"], r["cust_ref"], r["status"],
                      r["customer_name"], r["error_message"][:60])
    console.print(table if rows else "no orders match")


def order_details(conn: Any, ref: str) -> dict[str, Any]:
    row = find_order(conn, ref)
    if row is None:
        raise ConfigError(f"no order {ref!r} in the ledger",
                          fix="use the ledger id, cust_ref, order number, or see `orderbridge orders list`; "
                              "if the source has it, `orderbridge connections diagnose` says why it is missing")
    oid = row.id

    def rows(table: sa.Table, *order: Any) -> list[dict[str, Any]]:
        q = sa.select(table).where(table.c.order_id == oid).order_by(*order)
        return [dict(r) for r in conn.execute(q).mappings()]

    out = dict(row._mapping)
    out["connection"] = conn.execute(sa.select(t.connections.c.name).where(
        t.connections.c.id == row.connection_id)).scalar()
    out["timeline"] = rows(t.order_events, t.order_events.c.id)
    out["workflow"] = rows(t.workflow_steps, t.workflow_steps.c.seq)
    out["deliveries"] = rows(t.deliveries, t.deliveries.c.id)
    out["shipments"] = rows(t.shipments, t.shipments.c.id)
    out["confirmations"] = rows(t.confirmations, t.confirmations.c.id)
    out["cancellation"] = rows(t.cancellations, t.cancellations.c.id)
    return out


@app.command("show")
def show(ref: Annotated[str, typer.Argument(help="Ledger id, cust_ref or order number.")],
         config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Everything about one order: payloads, steps, shipments and its timeline."""
    hub, _ = open_hub(config, apply=False)
    with hub.db.connect() as conn:
        d = order_details(conn, ref)
    if as_json:
        print_json(d)
        return
    console.print(f"[bold]{d['cust_po_no']}[/] (id {d['id']}, cust_ref {d['cust_ref']}) from {d['connection']}: "
                  f"[bold]{d['status']}[/]")
    if d["error_message"]:
        console.print(f"[red]problem:[/] {d['error_message']}")
        if d["error_fix"]:
            console.print(f"[bold]fix:[/] {d['error_fix']}")
    for s in d["workflow"]:
        console.print(f"  step {s['label'] or s['name']}: {s['state']} {s['last_error']}")
    for s in d["deliveries"]:
        console.print(f"  delivery: {s['state']} backend id {s['backend_order_id'] or '-'} {s['last_error']}")
    for s in d["shipments"]:
        console.print(f"  shipment {s['external_id']}: {s['carrier']} {', '.join(s['tracking_numbers'])}")
    table = Table("when (UTC)", "event", "message")
    for e in d["timeline"]:
        table.add_row(e["at"].strftime("%Y-%m-%d %H:%M:%S"), e["kind"], e["message"])
    console.print(table)


@app.command("retry")
def retry(ref: str, config: ConfigOpt = None) -> None:
    """Retry an order's failed or parked steps now (after fixing the cause)."""
    hub, _ = open_hub(config, apply=False)
    with hub.db.begin() as conn:
        row = order_details(conn, ref)
        n = retry_order(conn, row["id"])
    console.print(f"{n} step(s) of order {row['cust_po_no']} will run again at the next sync")


@app.command("cancel")
def cancel(ref: str, config: ConfigOpt = None) -> None:
    """Cancel sending an order to the backend (only before it was delivered)."""
    hub, _ = open_hub(config, apply=False)
    with hub.db.begin() as conn:
        row = order_details(conn, ref)
        ok = cancel_sending(conn, row["id"])
    if not ok:
        raise ConfigError(f"order {row['cust_po_no']} was already delivered",
                          fix="cancel it at the source; the cancellation then reaches the backend")
    console.print(f"order {row['cust_po_no']} will not be sent")


def _date(value: str) -> datetime:
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD or an ISO timestamp)") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


@app.command("repull")
def repull(
    connection: Annotated[str, typer.Option(help="Source connection.")],
    since: Annotated[str, typer.Option(help="Start (UTC date or ISO timestamp).")],
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Re-read a date range from a source (missed orders are imported; nothing is duplicated)."""
    from orderbridge.engine.intake import repull as do_repull

    hub, _ = open_hub(config)
    end = _date(until) if until else datetime.now(UTC)

    async def go() -> dict[str, int]:
        try:
            return await do_repull(hub, connection, _date(since), end)
        finally:
            await hub.aclose()

    tally = run_async(go())
    console.print("re-pulled: " + (", ".join(f"{v} {k}" for k, v in sorted(tally.items())) or "nothing found"))
