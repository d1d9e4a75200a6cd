"""The distributed runner end to end: real processes on the real PostgreSQL server.

The web (`serve --no-runner`), three `orderbridge worker` processes and the scheduler run against a
fresh database; five shop/WMS pairs run in a process of their own. 2,000 orders flow from the five
shops to their WMS, are shipped and confirmed back, while one worker is killed with SIGKILL in the
middle of its runs. Every order must reach its WMS exactly once, every confirmation its shop exactly
once, and no account may see more calls in any second than its budget.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from orderbridge.ledger import schema as t
from orderbridge.runners.cluster import Cluster, ClusterProcess, start_cluster
from tests.conftest import _pg_database
from tests.support import fleet, shop

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SOURCES = 5
PER_SOURCE = 400
BY_WEBHOOK = 20  # of each source's orders, also announced by webhook to the web process
BUDGET = 40  # calls per second for every account (each shop and each WMS)
OB = [sys.executable, "-m", "tests.support.ob_cli"]  # `orderbridge`, with the test shop pair registered


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


def _progress(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {str(k): int(v) for k, v in conn.execute(
            sa.select(t.orders.c.status, sa.func.count()).group_by(t.orders.c.status))}


def _leases_by_owner(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as conn:
        owners = conn.execute(sa.select(t.job_state.c.lease_owner).where(
            t.job_state.c.lease_owner.isnot(None))).scalars().all()
    return Counter(str(o) for o in owners)


def _kill_a_busy_worker(cluster: Cluster, engine: sa.Engine, deadline: float) -> tuple[ClusterProcess, str, int]:
    """SIGKILL the worker holding the most leases (it is in the middle of job runs)."""
    while time.monotonic() < deadline:
        cluster.check_alive()
        leases = _leases_by_owner(engine)
        busy = [(sum(n for owner, n in leases.items() if f":{w.pid}:w" in owner), w) for w in cluster.workers]
        count, victim = max(busy, key=lambda b: b[0])
        if count:
            owner = next(o for o in leases if f":{victim.pid}:w" in o)
            worker_id = int(owner.split(":w", 1)[1].split("-", 1)[0])
            cluster.kill(victim)
            return victim, owner.rsplit(":w", 1)[0] + ":", worker_id
        time.sleep(0.05)
    raise AssertionError("no worker ever held a lease")


def _dead_worker_cleared(engine: sa.Engine, owner_prefix: str, worker_id: int) -> bool:
    with engine.connect() as conn:
        held = conn.execute(sa.select(sa.func.count()).select_from(t.job_state).where(
            t.job_state.c.lease_owner.like(owner_prefix + "%"))).scalar_one()
        doing = conn.execute(sa.text(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND worker_id = :w"),
            {"w": worker_id}).scalar_one()
    return held == 0 and doing == 0


@pytest.mark.timeout(900)
def test_2000_orders_from_5_sources_through_a_cluster_with_a_worker_killed(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERBRIDGE_METRICS_TOKEN", "cluster-scrape")  # the web process inherits it
    engine = sa.create_engine(pg_url)
    oids = {i: [f"S{i}-{k:03d}" for k in range(PER_SOURCE)] for i in range(1, SOURCES + 1)}
    with fleet.shop_fleet(SOURCES) as urls, httpx.Client(timeout=30) as http:
        config = fleet.write_config(tmp_path / "ob.toml", urls, database_url=pg_url, calls_per_second=BUDGET)
        for url in urls:
            fleet.auto_ship(http, url)  # the warehouse ships each order as it arrives
        with start_cluster(config, workers=3, web=True, command=OB, log_dir=tmp_path / "logs") as cluster:
            started = time.monotonic()
            for i, url in enumerate(urls, 1):
                fleet.seed(http, url, oids[i])
                for oid in oids[i][:BY_WEBHOOK]:  # a webhook and the poller race for the same orders
                    r = http.post(f"{cluster.web_url}/webhooks/shop{i}", headers={"x-shop-token": shop.TOKEN},
                                  content=json.dumps({"event": f"e-{oid}", "order": oid}))
                    assert r.status_code == 200, r.text
            deadline = started + 600

            # Kill one worker while it is busy (at least a fifth of the orders sent, leases held).
            while _progress(engine).get("new", 0) > 0.8 * SOURCES * PER_SOURCE or not _progress(engine):
                assert time.monotonic() < deadline, "orders did not start moving"
                cluster.check_alive()
                time.sleep(0.2)
            victim, owner_prefix, worker_id = _kill_a_busy_worker(cluster, engine, deadline)
            killed_at = time.monotonic()
            assert not victim.alive()

            recovered_in = None
            while True:
                assert time.monotonic() < deadline, f"not done in time: {_progress(engine)}"
                cluster.check_alive()
                if recovered_in is None and _dead_worker_cleared(engine, owner_prefix, worker_id):
                    recovered_in = time.monotonic() - killed_at
                if _progress(engine).get("confirmed", 0) == SOURCES * PER_SOURCE and recovered_in is not None:
                    break
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            metrics = http.get(cluster.web_url + "/metrics", headers={"Authorization": "Bearer cluster-scrape"}).text
            states = [fleet.state(http, url) for url in urls]
            call_logs = [fleet.calls(http, url) for url in urls]

    print(f"2,000 orders confirmed in {elapsed:.0f} s; the killed worker's runs were picked up in "
          f"{recovered_in:.1f} s")
    # The killed worker's leases and queued runs were taken over within seconds, not the 30 s lease.
    assert recovered_in < 25, recovered_in
    for i, (st, log) in enumerate(zip(states, call_logs, strict=True), 1):
        expected = sorted(f"PO-{oid}" for oid in oids[i])
        created = Counter(st["wms"]["creates"])
        assert sorted(created) == expected and set(created.values()) == {1}, \
            f"shop{i}: duplicates {[r for r, n in created.items() if n > 1]}"
        confirmed = Counter(c["order"] for c in st["shop"]["confirmations"])
        assert sorted(confirmed) == sorted(oids[i]) and set(confirmed.values()) == {1}, \
            f"shop{i}: duplicate confirmations {[o for o, n in confirmed.items() if n > 1]}"
        for side in ("/shop", "/wms"):
            busiest, second = fleet.busiest_second(log, side)
            assert busiest <= BUDGET, f"shop{i} {side}: {busiest} calls in the second starting {second}"
        assert not [c for c in log if c["status"] == 429]
    with engine.connect() as conn:
        undelivered = conn.execute(sa.select(sa.func.count()).select_from(t.deliveries).where(
            t.deliveries.c.state != "done")).scalar_one()
        webhook_events = conn.execute(sa.select(sa.func.count()).select_from(t.webhook_events)).scalar_one()
    engine.dispose()
    assert undelivered == 0
    assert webhook_events == SOURCES * BY_WEBHOOK
    assert f'orderbridge_orders{{status="confirmed"}} {float(SOURCES * PER_SOURCE)}' in metrics
    assert "orderbridge_workers_alive" in metrics and "orderbridge_queue_jobs" in metrics
