"""Throughput of the distributed runner with 1, 2 and 4 workers on PostgreSQL, beside the embedded runner on SQLite.

    python -m benchmarks.scaleout [--orders 1000] [--sources 4] [--workers 1,2,4] [--out scaleout.json]

Each run starts from an empty ledger (a fresh PostgreSQL database, or a new SQLite file), the test
shop/WMS pairs in a process of their own with warehouses that ship at once, and the processes of
the runner; the clock runs from the moment the orders appear at the shops until the last one is
confirmed back. Figures are orders per second, end to end (download, delivery, shipment pickup,
confirmation). Run it from the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from tests.support import fleet

from orderbridge.connectors.sandbox_kit import free_port
from orderbridge.ledger.scratch import scratch_database
from orderbridge.runners.cluster import start_cluster

OB = [sys.executable, "-m", "tests.support.ob_cli"]  # `orderbridge` with the test shop pair registered
PG_ADMIN = os.environ.get("ORDERBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _flow(urls: list[str], per_source: int, confirmed: Any, timeout: float) -> float:
    """Seed the orders, return the seconds until every one is confirmed at its shop."""
    total = per_source * len(urls)
    with httpx.Client(timeout=60) as http:
        for url in urls:
            fleet.auto_ship(http, url)
        began = time.monotonic()
        for i, url in enumerate(urls, 1):
            fleet.seed(http, url, [f"B{i}-{k:05d}" for k in range(per_source)])
        while confirmed() < total:
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"only {confirmed()} of {total} orders confirmed after {timeout:.0f} s")
            time.sleep(0.25)
        return time.monotonic() - began


def _confirmed_in(db_url: str) -> Any:
    engine = sa.create_engine(db_url)

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM orders WHERE status = 'confirmed'")).scalar_one())
    return count


def run_embedded(urls: list[str], per_source: int, workdir: Path, budget: int, timeout: float) -> float:
    db = f"sqlite:///{workdir / 'embedded.sqlite'}"
    config = fleet.write_config(workdir / "embedded.toml", urls, database_url=db, calls_per_second=budget)
    log = (workdir / "embedded.log").open("wb")
    port = free_port()
    proc = subprocess.Popen([*OB, "serve", "--port", str(port), "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc)
        return _flow(urls, per_source, _confirmed_in(db), timeout)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def run_distributed(urls: list[str], per_source: int, workers: int, workdir: Path, budget: int,
                    timeout: float) -> float:
    with scratch_database(PG_ADMIN) as db:
        config = fleet.write_config(workdir / f"cluster{workers}.toml", urls, database_url=db,
                                    calls_per_second=budget)
        with start_cluster(config, workers=workers, web=True, command=OB, log_dir=workdir / f"logs{workers}") as cl:
            _wait_workers(db, workers, cl)
            return _flow(urls, per_source, _confirmed_in(db), timeout)


def _wait_workers(db: str, n: int, cluster: Any, timeout: float = 60) -> None:
    engine = sa.create_engine(db)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            cluster.check_alive()
            with contextlib.suppress(sa.exc.ProgrammingError), engine.connect() as conn:
                if conn.execute(sa.text("SELECT count(*) FROM procrastinate_workers")).scalar_one() >= n:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{n} workers did not register within {timeout:.0f} s")
    finally:
        engine.dispose()


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000, help="orders in all (split over the sources)")
    parser.add_argument("--sources", type=int, default=4, help="shop/WMS pairs (merchants)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure, comma-separated")
    parser.add_argument("--budget", type=int, default=1000, help="calls per second per account")
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded SQLite figure")
    parser.add_argument("--timeout", type=float, default=900, help="give up on one run after this many seconds")
    parser.add_argument("--out", type=Path, default=Path("scaleout.json"), help="where to save the JSON figures")
    args = parser.parse_args(argv)
    per_source = max(1, args.orders // args.sources)
    total = per_source * args.sources
    results: list[dict[str, Any]] = []

    def record(runner: str, database: str, workers: int, seconds: float) -> None:
        results.append({"runner": runner, "database": database, "workers": workers, "orders": total,
                        "seconds": round(seconds, 2), "orders_per_second": round(total / seconds, 1)})
        print(f"{runner:12} {database:10} workers={workers}  {total} orders in {seconds:6.1f} s  "
              f"{total / seconds:6.1f} orders/s", flush=True)

    with tempfile.TemporaryDirectory(prefix="ob-bench-") as tmp:
        workdir = Path(tmp)
        if not args.no_embedded:
            with fleet.shop_fleet(args.sources) as urls:  # fresh emulators for every run
                record("embedded", "sqlite", 1, run_embedded(urls, per_source, workdir, args.budget, args.timeout))
        for n in [int(w) for w in args.workers.split(",") if w.strip()]:
            with fleet.shop_fleet(args.sources) as urls:
                record("distributed", "postgresql", n,
                       run_distributed(urls, per_source, n, workdir, args.budget, args.timeout))
    report = {"benchmark": "scaleout", "orders": total, "sources": args.sources, "budget_per_account": args.budget,
              "cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "results": results}
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"saved {args.out}")
    return report


if __name__ == "__main__":
    main()
