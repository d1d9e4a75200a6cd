"""`orderbridge connections ...`: list, test credentials, diagnose missing orders."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table

from orderbridge.cli.common import ConfigOpt, JsonOpt, console, open_hub, print_json, run_async
from orderbridge.connectors.errors import ConnectorError
from orderbridge.ledger import schema as t

app = typer.Typer(help="Connections to sources and backends.", no_args_is_help=True)


@app.command("list")
def list_connections(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every connection with its type, role and order counts (credentials are never shown)."""
    hub, _ = open_hub(config)
    c, m, o = t.connections, t.merchants, t.orders
    counts = sa.select(sa.func.count()).where(o.c.connection_id == c.c.id).scalar_subquery()
    q = sa.select(c.c.name, m.c.name.label("merchant"), c.c.type, c.c.role, c.c.enabled, c.c.test_mode,
                  c.c.base_url, counts.label("orders")).join(m, m.c.id == c.c.merchant_id).order_by(c.c.name)
    with hub.db.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "merchant", "type", "role", "enabled", "test mode", "orders")
    for r in rows:
        table.add_row(r["name"], r["merchant"], r["type"], r["role"], "yes" if r["enabled"] else "no",
                      "yes" if r["test_mode"] else "no", str(r["orders"]))
    console.print(table if rows else "no connections: declare them in the configuration file")


@app.command("test")
def test(name: str, config: ConfigOpt = None) -> None:
    """Check a connection's credentials and access."""
    hub, _ = open_hub(config)

    async def go() -> tuple[bool, str]:
        try:
            with hub.db.connect() as conn:
                row = hub.connection(conn, name)
            result = await hub.connector(row).check()
            return result.ok, result.message
        except ConnectorError as exc:
            return False, str(exc)
        finally:
            await hub.aclose()

    ok, message = run_async(go())
    console.print(f"[{'green' if ok else 'red'}]{'OK' if ok else 'FAILED'}:[/] {message}")
    if not ok:
        raise typer.Exit(1)


@app.command("diagnose")
def diagnose(
    name: str,
    order_id: Annotated[str | None, typer.Argument(help="One source order id (default: every recent order).")] = None,
    days: Annotated[int, typer.Option(help="How far back to look.", min=1, max=365)] = 30,
    show_all: Annotated[bool, typer.Option("--all", help="Also list orders that were imported.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Where is my order? List what the source has that orderbridge did not import, and why."""
    from orderbridge.engine.diagnose import diagnose as run

    hub, _ = open_hub(config)

    async def go() -> list[Any]:
        try:
            return await run(hub, name, order_id, days)
        finally:
            await hub.aclose()

    findings = run_async(go())
    if not show_all and not order_id:
        findings = [f for f in findings if f.state != "imported"]
    if as_json:
        print_json([f.__dict__ for f in findings])
        return
    if not findings:
        console.print("every order the source has in that period was imported" if not order_id
                      else f"the source has no order {order_id}")
        return
    table = Table("order", "status at source", "placed", "in orderbridge", "why")
    for f in findings:
        table.add_row(f.external_id, f.source_status, f.order_date.strftime("%Y-%m-%d") if f.order_date else "",
                      f.state, f.reason)
    console.print(table)
