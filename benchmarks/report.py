"""The benchmark's table and its JSON file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

RESULTS = Path("benchmarks") / "results"


def default_out() -> Path:
    return RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"


def save(report: dict[str, Any], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def run_problems(name: str, run: dict[str, Any], *, time_boxed: bool = False) -> list[str]:
    """What fails one side's run: not finishing (unless time-boxed, as with --real-limits), any
    duplicated order or confirmation, and, once it finished, any lost one."""
    out = [] if run["finished"] or time_boxed else [f"{name} did not get every order through before --timeout"]
    counted = ["duplicated_orders", "duplicated_confirmations"]
    if run["finished"]:  # an unfinished run has not made them yet: not lost
        counted += ["lost_orders", "lost_confirmations"]
    return out + [f"{name}: {run[k]} {k.replace('_', ' ')}" for k in counted if run[k]]


def failures(report: dict[str, Any]) -> list[str]:
    """Why the bench fails, one line each (none: it passed): with --rounds, every round's sides,
    not only the round whose figures are shown."""
    if "rounds" in report:
        return [p for r in report["rounds"] for p in r["problems"]]
    time_boxed = bool(report["options"].get("real_limits"))
    return [p for name in ("orderbridge", "floor") if name in report
            for p in run_problems(name, report[name], time_boxed=time_boxed)]


def _rows_written(ledger: dict[str, float] | None) -> float | None:
    """Rows inserted, updated and deleted per order (PostgreSQL's counts), None without them."""
    if not ledger:
        return None
    return round(ledger["rows_inserted"] + ledger["rows_updated"] + ledger["rows_deleted"], 2)


def _client(run: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = run.get("hub") or run.get("client") or {}
    return result


def table(report: dict[str, Any]) -> Table:
    opts = report["options"]
    if "orders" not in opts:  # latency mode
        t = Table(title="orderbridge bench --latency: order created at the source -> created in the backend")
        for col in ("path", "orders", "delivered", "p50 (s)", "p99 (s)", "max (s)"):
            t.add_column(col)
        for mode, lat in report["latency"]["by_mode"].items():
            t.add_row(mode, *(_fmt(lat[k]) for k in ("orders", "delivered", "p50", "p99", "max")))
        return t
    db = "PostgreSQL" if (opts.get("database_url") or "").startswith("post") else "SQLite"
    runner = f"{opts['runner']} runner"
    if opts["runner"] == "workers":
        runner = f"{opts.get('workers') or 2} worker processes"
    title = (f"orderbridge bench: {opts['orders']:,} orders, {opts['sources']} Houzz stores -> TradeGecko, "
             f"{runner}, {db}{', real rate limits' if opts['real_limits'] else ''}")
    t = Table(title=title)
    t.add_column("figure")
    runs = [k for k in ("orderbridge", "floor") if k in report]
    for name in runs:
        t.add_column(name, justify="right")
    rows = [
        ("finished", lambda r: r["finished"]),
        ("wall time (s)", lambda r: r["seconds"]),
        ("orders / s end to end", lambda r: r["orders_per_second"]),
        ("latency source -> backend p50 (s)", lambda r: r["latency_seconds"]["p50"]),
        ("latency source -> backend p99 (s)", lambda r: r["latency_seconds"]["p99"]),
        ("first / half / all confirmed (s)", lambda r: " / ".join(
            str(r.get("confirmed_at_seconds", {}).get(k, "-")) for k in ("first", "half", "all"))),
        ("API calls / order", lambda r: r["calls"]["per_order"]),
        ("calls answered 429", lambda r: r["calls"]["answered_429"]),
        # The client's process: the hub's, or the floor's own.
        ("client CPU s / 1,000 orders", lambda r: _client(r).get("cpu_seconds_per_1000_orders")),
        ("sandboxes CPU s / 1,000 orders", lambda r: r.get("sandbox_cpu_seconds_per_1000_orders")),
        ("ledger server CPU s / 1,000 orders", lambda r: r.get("ledger_server_cpu_seconds_per_1000_orders")),
        ("ledger transactions / order", lambda r: r.get("ledger_per_order", {}).get("transactions")),
        ("ledger rows written / order", lambda r: _rows_written(r.get("ledger_per_order"))),
        ("ledger rows read / order", lambda r: r.get("ledger_per_order", {}).get("rows_read")),
        ("bench process CPU s / 1,000 orders", lambda r: r.get("bench_cpu_seconds_per_1000_orders")),
        ("machine's cores busy (share)", lambda r: r.get("machine_busy_share")),
        ("client peak RSS (MB)", lambda r: _client(r).get("peak_rss_mb")),
        ("lost orders", lambda r: r["lost_orders"]),
        ("duplicated orders", lambda r: r["duplicated_orders"]),
        ("lost confirmations", lambda r: r["lost_confirmations"]),
        ("duplicated confirmations", lambda r: r["duplicated_confirmations"]),
        ("listings out of sync", lambda r: r["inventory_listings_out_of_sync"]),
    ]
    for label, get in rows:
        t.add_row(label, *(_fmt(get(report[name])) for name in runs))
    kinds = sorted({k for name in runs for k in report[name]["calls"]["per_order_by_kind"]})
    for kind in kinds:
        t.add_row(f"  {kind} / order", *(_fmt(report[name]["calls"]["per_order_by_kind"].get(kind)) for name in runs))
    rounds = report.get("rounds")
    median = " (median)" if rounds else ""
    if "ratio_to_floor" in report:
        t.add_row(f"[bold]orderbridge time / floor time{median}[/]", _fmt(report["ratio_to_floor"]), "1")
    if report.get("cpu_ratio_to_floor") is not None:
        t.add_row(f"orderbridge client CPU / floor client CPU{median}", _fmt(report["cpu_ratio_to_floor"]), "1")
    for n, r in enumerate(rounds or [], start=1):
        shown = " (figures above)" if n == report.get("figures_of_round") else ""
        t.add_row(f"round {n}{shown}: wall time s (time ratio, CPU ratio)",
                  f"{_fmt(r['orderbridge_seconds'])} ({_fmt(r['ratio'])}, {_fmt(r['cpu_ratio'])})",
                  _fmt(r["floor_seconds"]))
    if rounds and report.get("ratio_range"):
        low, high = report["ratio_range"]
        t.add_row("time ratio: lowest - highest round", f"{_fmt(low)} - {_fmt(high)}", "")
    for api, lim in report.get("rate_limits", {}).items():
        t.add_row(f"{api}: share of allowed call rate", _fmt(lim["share_of_allowed"]), *([""] * (len(runs) - 1)))
        t.add_row(f"{api}: share of calls answered 429", _fmt(lim["share_429"]), *([""] * (len(runs) - 1)))
    return t
