"""`orderbridge demo`: see orders flow from a Houzz store into TradeGecko and back."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from orderbridge.cli.common import console, err_console, print_json, run_async


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"orderbridge demo: Houzz -> TradeGecko, Wix -> Holded ({summary['elapsed_seconds']} s)  "
                        f"dashboard: {summary['dashboard']} (user {summary['dashboard_user']})")
    table.add_column("orders seeded")
    for status in ("new", "at_wms", "partial", "shipped", "confirmed", "error", "canceled"):
        table.add_column(status)
    table.add_row(str(summary["orders_seeded"]),
                  *(str(summary["by_status"].get(s, 0)) for s in ("new", "at_wms", "partial", "shipped", "confirmed",
                                                                 "error", "canceled")))
    for event in summary["events"]:
        table.add_row("", f"[dim]{event}[/]")
    for oid, message in summary["errors"].items():
        table.add_row("", f"[red]{oid}: {message}[/]")
    return table


def demo(
    orders: Annotated[int, typer.Option("--orders", min=4, max=100_000, help="How many orders to seed.")] = 20,
    until_done: Annotated[bool, typer.Option("--until-done", help="Exit once every order reached its final state.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary at the end (no live table).")] = False,
    port: Annotated[int, typer.Option(help="Port of the web app and API.")] = 8080,
    timeout: Annotated[float, typer.Option(help="With --until-done: give up after this many seconds.")] = 600,
    real_limits: Annotated[bool, typer.Option("--real-limits", help="Keep the APIs' documented rate limits "
                                              "(slow: TradeGecko allows 1 call per second).")] = False,
    serve: Annotated[bool, typer.Option("--serve", help="With --until-done: keep the dashboard up on the demo's "
                                        "ledger after the orders are done, until Ctrl+C.")] = False,
) -> None:
    """Start the Houzz, TradeGecko, Wix and Holded sandboxes, seed catalogs and orders (some with problems),
    and run the hub on the embedded default until interrupted (or --until-done)."""
    import secrets

    from orderbridge.demo.run import DemoOptions, run_demo

    password = secrets.token_urlsafe(12)
    opts = DemoOptions(orders=orders, until_done=until_done, port=port, timeout=timeout, real_limits=real_limits,
                       serve=serve, admin_password=password)
    err_console.print(f"dashboard: http://127.0.0.1:{port}/dashboard/  user: admin  password: {password}")
    if not as_json:
        err_console.print("starting the Houzz, TradeGecko, Wix and Holded sandboxes and seeding "
                          f"{orders} orders ... (Ctrl+C to stop)")
    live = None if as_json else Live(console=console, refresh_per_second=4)

    def report(summary: dict[str, Any]) -> None:
        if live is not None:
            live.update(_table(summary))

    try:
        if live:
            live.start()
        summary = run_async(run_demo(opts, report))
    except KeyboardInterrupt:
        err_console.print("stopped")
        return
    finally:
        if live:
            live.stop()
            console.print()
    if as_json:
        print_json(summary)
    else:
        dupes = summary["backend_duplicates"] or "none"
        console.print(f"{summary['confirmed']} confirmed, {summary['canceled']} cancelled, "
                      f"{len(summary['errors'])} in error; duplicates in TradeGecko: {dupes}; "
                      f"duplicate confirmations at Houzz: {summary['duplicate_confirmations'] or 'none'}")
        books = summary["wix_holded"]
        console.print(f"Wix -> Holded: {books['confirmed']} of {books['orders']} confirmed, "
                      f"{books['holded_documents']} Holded documents, {books['wix_fulfillments']} Wix fulfillments, "
                      f"{books['arrived_by_webhook']} arrived by webhook")
    if until_done and not summary.get("finished"):
        raise typer.Exit(1)
