"""The distributed runner's commands: worker, scheduler, and the queue's health (`jobs queue`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orderbridge.cli.common import ConfigOpt, JsonOpt, console, err_console, open_hub, print_json, run_async
from orderbridge.config import load_config
from orderbridge.connectors.errors import ConfigError
from orderbridge.engine.hub import Hub
from orderbridge.gc_tuning import tune_for_long_run
from orderbridge.ledger.db import resolve_url


def register(app: typer.Typer) -> None:
    from orderbridge.cli.ops import jobs_app

    app.command("worker")(worker)
    app.command("scheduler")(scheduler)
    jobs_app.command("queue")(jobs_queue)


def _cluster_hub(config: Path | None) -> Hub:
    """Open the ledger for a process of the cluster; refuse SQLite before creating anything."""
    url = resolve_url(load_config(config).database.url)
    if not url.startswith(("postgres://", "postgresql")):
        raise ConfigError(
            f"the distributed runner needs PostgreSQL: the ledger is {url.split('?')[0]}, which only "
            "processes on this machine can share",
            fix="set ORDERBRIDGE_DATABASE_URL (or [database] url) to postgresql://USER@HOST:PORT/DB, or run "
                "everything in one process with `orderbridge serve` (the embedded runner)",
        )
    from orderbridge.runners.distributed import attach

    hub, _ = open_hub(config)
    return attach(hub)


def worker(
    config: ConfigOpt = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Job runs at a time in this process.")] = 8,
    name: Annotated[str | None, typer.Option(help="Worker name in logs (default: host:pid).")] = None,
) -> None:
    """Run queued jobs (distributed runner, PostgreSQL). Start as many as the load needs, on any host."""
    from orderbridge.runners.distributed.worker import run_worker

    hub = _cluster_hub(config)
    err_console.print(f"worker running {concurrency} job run(s) at a time; stop with Ctrl+C or SIGTERM")
    tune_for_long_run()
    run_async(run_worker(hub, concurrency=concurrency, name=name))


def scheduler(
    config: ConfigOpt = None,
    tick: Annotated[float, typer.Option(min=0.05, max=60, help="Seconds between two looks at due jobs.")] = 0.5,
    stalled_after: Annotated[float, typer.Option(
        min=2, max=3600, help="Requeue the runs of a worker silent this many seconds.")] = 10.0,
) -> None:
    """Queue every connection's due jobs for the workers, once per period, across the whole cluster."""
    from orderbridge.runners.distributed import make_app
    from orderbridge.runners.distributed.scheduler import Scheduler

    hub = _cluster_hub(config)

    async def go() -> None:
        app = make_app(hub.db, pool_size=2)
        sched = Scheduler(hub, app, tick=tick, stalled_after=stalled_after)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(sig, sched.stop)
        async with app.open_async():
            await sched.run_forever()
        await hub.aclose()

    err_console.print("scheduler running; stop with Ctrl+C or SIGTERM")
    tune_for_long_run()
    run_async(go())


def jobs_queue(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Queue depth, job lag, failing jobs and live workers (the figures /metrics exports)."""
    from orderbridge.web.metrics import snapshot

    hub, _ = open_hub(config, apply=False)
    data = snapshot(hub.db).as_dict()
    hub.db.dispose()
    if as_json:
        print_json(data)
        return
    table = Table("figure", "value")
    queue = data["queue"]
    table.add_row("queue", "no job queue (embedded runner)" if queue is None else
                  ", ".join(f"{v} {k}" for k, v in sorted(queue.items())) or "empty")
    if queue is not None:
        table.add_row("workers alive", str(data["workers"]))
        table.add_row("oldest waiting run", f"{data['oldest_waiting_seconds']} s")
    table.add_row("job lag (max)", f"{data['job_lag_seconds']:.1f} s")
    table.add_row("running job runs", str(data["running_jobs"]))
    table.add_row("failing jobs", ", ".join(data["failing_jobs"]) or "none")
    table.add_row("orders", ", ".join(f"{v} {k}" for k, v in sorted(data["orders"].items())) or "none")
    table.add_row("open alerts", str(data["open_alerts"]))
    console.print(table)

