"""`orderbridge chaos`: kill the hub again and again while faulty APIs answer; count what survived."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orderbridge.cli.common import console, err_console, print_json


def chaos(
    orders: Annotated[int, typer.Option("--orders", min=2, max=100_000, help="How many orders to place.")] = 60,
    kills: Annotated[int, typer.Option("--kills", min=0, max=10_000, help="How many times to SIGKILL the hub.")]
    = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random kill moments and orders.")] = 1,
    fault_rate: Annotated[float, typer.Option("--fault-rate", min=0.0, max=0.5,
                                              help="Scale every fault rate so they sum to this (per call).")]
    = 0.16,
    rate: Annotated[list[str] | None, typer.Option("--rate", help="One fault's rate, KIND=RATE (e.g. "
                                                   "timeout_after=0.05); kinds: 500 502 503 429 timeout "
                                                   "timeout_after malformed reset.")] = None,
    kill_min: Annotated[float, typer.Option(help="Shortest life of the hub between kills (s).")] = 0.4,
    kill_max: Annotated[float, typer.Option(help="Longest life of the hub between kills (s).")] = 2.5,
    drain_timeout: Annotated[float, typer.Option(help="After the last kill, wait this long for every order "
                                                 "to be confirmed (s).")] = 240,
    database_url: Annotated[str | None, typer.Option("--database-url", help="Ledger URL (default: a SQLite "
                                                     "file in the work directory).")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep the ledger, config and hub log here "
                                                 "(default: a temporary directory).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also save the figures to this JSON file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Run Houzz -> TradeGecko and Wix -> Holded with faults injected (5xx, timeouts before and after
    the write, malformed bodies, resets, 429 bursts) while the hub is killed with SIGKILL and restarted;
    then check that no order was lost or duplicated. Exits 1 if any was."""
    from orderbridge.chaos.run import ChaosOptions, run_chaos
    from orderbridge.chaos.world import Faults
    from orderbridge.connectors.errors import ConfigError
    from orderbridge.connectors.sandbox_kit import FAULT_KINDS

    faults = Faults()
    total = sum(faults.rates.values())
    faults.rates = {k: v * fault_rate / total for k, v in faults.rates.items()} if total else {}
    for item in rate or []:
        kind, _, value = item.partition("=")
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}", fix=f"use one of: {', '.join(FAULT_KINDS)}")
        try:
            faults.rates[kind] = float(value)
        except ValueError:
            raise ConfigError(f"--rate {item!r}: the rate is not a number", fix="write KIND=RATE, e.g. 500=0.05") \
                from None
    if kill_min <= 0 or kill_max < kill_min:
        raise ConfigError("--kill-min must be above 0 and --kill-max at least --kill-min",
                          fix="e.g. --kill-min 0.4 --kill-max 2.5")
    opts = ChaosOptions(orders=orders, kills=kills, seed=seed, faults=faults, kill_after=(kill_min, kill_max),
                        drain_timeout=drain_timeout, database_url=database_url, workdir=workdir)

    def report(line: str) -> None:
        if not as_json:
            err_console.print(line, highlight=False)

    figures = run_chaos(opts, report)
    if out:
        out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print_json(figures)
    else:
        console.print(f"{figures['kills_survived']} kills survived, {figures['faults_injected']} faults injected; "
                      f"{figures['orders_placed']} orders placed, {figures['orders_confirmed']} confirmed, "
                      f"{figures['orders_lost']} lost, {figures['orders_duplicated']} duplicated "
                      f"({figures['elapsed_seconds']} s)", highlight=False)
        for problem in [*figures["lost"], *figures["duplicated"], *figures["disagreements"]]:
            console.print(f"  {problem}", highlight=False, markup=False)
    if not figures["passed"]:
        raise typer.Exit(1)
