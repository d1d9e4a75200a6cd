"""`orderbridge bench`: throughput, latency and cost per order against the floor set by the APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.text import Text

from orderbridge.cli.common import console, err_console, print_json, run_async
from orderbridge.gc_tuning import tune_for_long_run


def bench(
    orders: Annotated[int, typer.Option("--orders", min=1, max=1_000_000, help="Orders to seed.")] = 10_000,
    sources: Annotated[int, typer.Option("--sources", min=1, max=100, help="Houzz Seller stores.")] = 10,
    quick: Annotated[bool, typer.Option("--quick", help="A short run: 500 orders over 5 stores.")] = False,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="PostgreSQL URL of a server where a fresh database is made for the run "
        "(default: a fresh SQLite file).")] = None,
    runner: Annotated[str, typer.Option("--runner", help="How the hub runs: embedded (one process), or workers "
                                        "(distributed: --workers Procrastinate worker processes; PostgreSQL "
                                        "only).")] = "embedded",
    workers: Annotated[int | None, typer.Option("--workers", min=1, max=32, help="With --runner workers: "
                                                "worker processes (default 2).")] = None,
    real_limits: Annotated[bool, typer.Option("--real-limits", help="Keep the APIs' documented rate limits and "
                                              "measure the call rate sustained against them (time-boxed).")] = False,
    duration: Annotated[float, typer.Option("--duration", help="With --real-limits or --latency: seconds to run.")]
    = 180.0,
    latency: Annotated[bool, typer.Option("--latency", help="Latency mode: orders trickle in; report order-to-"
                                          "backend latency for 1 s polling (Houzz) and webhooks (Wix).")] = False,
    rate: Annotated[float, typer.Option("--rate", help="With --latency: orders placed per second.")] = 2.0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256,
                                             help="Calls in flight per job (the hub) and per stage (the floor).")]
    = 8,
    overlap: Annotated[float, typer.Option("--overlap", help="The hub's cursor look-back (runner."
                                           "overlap_seconds) in seconds.")] = 120.0,
    no_floor: Annotated[bool, typer.Option("--no-floor", help="Skip the floor run.")] = False,
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=9, help="Run the hub and the floor this many "
                                        "times each, alternately first, and report the median ratio and its "
                                        "range (a shared machine's speed drifts between runs).")] = 1,
    profile: Annotated[Path | None, typer.Option("--profile", help="Profile the hub (pyinstrument) into this "
                                                 "text file.")] = None,
    tracemalloc: Annotated[bool, typer.Option("--tracemalloc", help="Also trace the hub's Python allocations "
                                              "(slower).")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="JSON file (default benchmarks/results/<time>.json).")]
    = None,
    timeout: Annotated[float, typer.Option(help="Give up on a run after this many seconds.")] = 3600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report instead of the table.")] = False,
) -> None:
    """Start the Houzz and TradeGecko sandboxes in their own processes, seed orders, run the whole lifecycle
    through orderbridge and then through a minimal direct client (the floor), and report throughput, latency,
    API calls, CPU (the hub's and the sandboxes') and memory per order, and lost/duplicated orders and confirmations."""
    from benchmarks.report import default_out, failures, save, table
    from benchmarks.run import BenchOptions, run_bench

    if quick:
        orders, sources = 500, 5
    if rounds > 1 and (no_floor or real_limits or latency):
        given = "--no-floor" if no_floor else "--real-limits" if real_limits else "--latency"
        err_console.print(f"error: --rounds compares the hub with the floor, which {given} does not run\n"
                          f"fix: drop --rounds, or {given}")
        raise typer.Exit(2)
    if profile is not None:
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            err_console.print("error: --profile needs pyinstrument\nfix: pip install pyinstrument")
            raise typer.Exit(2) from None
    opts = BenchOptions(orders=orders, sources=min(sources, orders), database_url=database_url, runner=runner,
                        workers=workers, real_limits=real_limits, duration=duration, concurrency=concurrency,
                        floor=not no_floor,
                        timeout=timeout, profile_to=str(profile.resolve()) if profile else None,
                        tracemalloc=tracemalloc, overlap_seconds=overlap, rounds=rounds)
    live = None if as_json else Live(console=console, refresh_per_second=4, transient=True)

    def progress(p: dict[str, Any]) -> None:
        if live is not None:
            live.update(Text(f"{p['phase']}: {p['confirmed']:,} of {p['orders']:,} orders confirmed, "
                             f"{p['calls']:,} API calls, {p['elapsed']} s"))

    tune_for_long_run()  # the bench's own process (warehouse, call logs) shares the cores
    try:
        if live:
            live.start()
        if latency:
            from benchmarks.latency import LatencyOptions, run_latency

            report = run_async(run_latency(LatencyOptions(rate=rate, seconds=duration, database_url=database_url,
                                                           runner=runner, workers=workers), progress))
        else:
            report = run_async(run_bench(opts, progress))
    finally:
        if live:
            live.stop()
    path = save(report, out or default_out())
    if as_json:
        print_json(report)
    else:
        console.print(table(report))
        console.print(f"saved {path}")
    problems = failures(report)
    if problems:
        for problem in problems:
            err_console.print(f"error: {problem}")
        err_console.print("fix: a lost or duplicated order is a bug: report it with the saved JSON report; "
                          "a run that did not finish may need a longer --timeout")
        raise typer.Exit(1)
