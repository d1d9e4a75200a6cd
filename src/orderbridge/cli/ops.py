"""Top-level commands: sync, serve, jobs, alerts, db."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table

from orderbridge import event_loop
from orderbridge.cli.common import ConfigOpt, JsonOpt, console, err_console, open_hub, print_json, run_async
from orderbridge.gc_tuning import tune_for_long_run
from orderbridge.ledger import schema as t

db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
alerts_app = typer.Typer(help="Alerts raised by jobs and orders.", no_args_is_help=True)
jobs_app = typer.Typer(help="Runner health: every job of every connection.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(jobs_app, name="jobs")


def sync(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Run every due job until nothing is left, then exit.")] = False,
    connection: Annotated[list[str] | None, typer.Option("--connection", help="Only these connections.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the jobs of every enabled connection (for cron and scripts: use --once)."""
    from orderbridge.runners.embedded import EmbeddedRunner, sync_once

    hub, _ = open_hub(config)
    if not once:
        err_console.print("running until interrupted (Ctrl+C); use --once to run until idle and exit")
        runner = EmbeddedRunner(hub)
        try:
            run_async(runner.run_forever())
        except KeyboardInterrupt:
            runner.stop()
        return

    def progress(n: int, results: list[Any]) -> None:
        moved = sum(r.processed for r in results)
        failed = [r for r in results if r.status == "failed"]
        if not as_json:
            err_console.print(f"pass {n}: {moved} changes" + (f", {len(failed)} job(s) failed" if failed else ""))
            for r in failed:
                err_console.print(f"  [red]{r.connection} {r.job}:[/] {r.error}")

    async def go() -> list[Any]:
        try:
            return await sync_once(hub, on_pass=progress, connections=connection)
        finally:
            await hub.aclose()

    history = run_async(go())
    with hub.db.connect() as conn:
        by_status = sa.select(t.orders.c.status, sa.func.count()).group_by(t.orders.c.status)
        counts: dict[str, int] = {str(k): int(v) for k, v in conn.execute(by_status).all()}
        waiting = conn.execute(sa.select(sa.func.count()).select_from(t.deliveries).where(
            t.deliveries.c.state == "pending", t.deliveries.c.next_attempt_at.isnot(None))).scalar_one()
    summary = {"orders_by_status": counts, "deliveries_waiting_for_retry": waiting,
               "job_runs": len([h for h in history if h.ran]),
               "failed_jobs": [f"{h.connection} {h.job}: {h.error}" for h in history if h.status == "failed"]}
    if as_json:
        print_json(summary)
    else:
        console.print("orders: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"))
        if waiting:
            console.print(f"{waiting} deliveries are waiting to be retried later")


def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    no_runner: Annotated[bool, typer.Option("--no-runner", help="Serve the web and API only.")] = False,
) -> None:
    """Serve the web app and API, with the embedded runner (unless --no-runner)."""
    import uvicorn

    from orderbridge.engine.users import count_users
    from orderbridge.web.app import create_app

    hub, cfg = open_hub(config)
    if no_runner and hub.db.dialect.name == "postgresql":
        from orderbridge.runners.distributed import attach

        attach(hub)  # workers run the jobs: webhooks queue theirs, and share the call budgets
    app = create_app(hub, with_runner=not no_runner, api=cfg.api)
    err_console.print(f"orderbridge on http://{host}:{port} (runner: {'off' if no_runner else 'embedded'}); "
                      f"dashboard: http://{host}:{port}/dashboard/")
    if count_users(hub.db) == 0:
        err_console.print("[yellow]no dashboard user yet:[/] create one with `orderbridge users create admin` "
                          "(add --merchant NAME for a user who sees one merchant only)")
    tune_for_long_run()
    uvicorn.run(app, host=host, port=port, log_level="warning", loop=event_loop.loop_name())


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the ledger schema to the newest version."""
    from orderbridge.ledger.db import current_revision, describe

    hub, _ = open_hub(config, apply=False)
    console.print(f"{describe(hub.db)} is at revision {current_revision(hub.db)}")
    if hub.db.dialect.name == "postgresql":
        from orderbridge.runners.distributed.setup import ensure_schema

        applied = ensure_schema(hub.db)
        console.print("job queue schema " + ("applied" if applied else "already in place"))


@alerts_app.command("list")
def alerts_list(config: ConfigOpt = None, as_json: JsonOpt = False,
                all_: Annotated[bool, typer.Option("--all", help="Include resolved alerts.")] = False) -> None:
    """Open alerts, newest first."""
    hub, _ = open_hub(config, apply=False)
    a = t.alerts
    q = sa.select(a).order_by(a.c.last_seen_at.desc())
    if not all_:
        q = q.where(a.c.resolved_at.is_(None))
    with hub.db.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no open alerts")
        return
    table = Table("id", "kind", "seen", "message", "fix")
    for r in rows:
        table.add_row(str(r["id"]), r["kind"], str(r["count"]), r["message"], r["fix"])
    console.print(table)


@jobs_app.command("status")
def jobs_status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Last run, next run and last error of every job of every connection."""
    hub, _ = open_hub(config, apply=False)
    js, c = t.job_state, t.connections
    with hub.db.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            sa.select(c.c.name.label("connection"), js).join(c, c.c.id == js.c.connection_id)
            .order_by(c.c.name, js.c.job)).mappings()]
    if as_json:
        print_json(rows)
        return
    table = Table("connection", "job", "last run", "status", "processed", "next run", "running", "last error")
    for r in rows:
        table.add_row(r["connection"], r["job"], _t(r["last_finished_at"]), r["last_status"],
                      str(r["last_processed"]), _t(r["next_run_at"]), "yes" if r["lease_owner"] else "",
                      r["last_error"][:80])
    console.print(table)


def _t(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"  # type: ignore[attr-defined]


