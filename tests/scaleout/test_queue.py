"""The distributed runner's parts on the real PostgreSQL server: queueing with the ledger write, the
scheduler, dead workers, the shared call budget; and the clear refusal of SQLite."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg.types.json
import pytest
import sqlalchemy as sa

from orderbridge.connectors.budget import JITTER, PgBudget
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.domain.models import utcnow
from orderbridge.engine.hub import Hub
from orderbridge.engine.intake import store_items
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger
from orderbridge.runners.distributed import QUEUE, attach, job_lock, make_app
from orderbridge.runners.distributed.scheduler import Scheduler
from orderbridge.runners.distributed.setup import defer_in_transaction
from orderbridge.runners.distributed.worker import run_worker
from orderbridge.web.app import create_app
from tests.conftest import ShopAdmin, _pg_database, shop_config
from tests.support import shop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture
def cluster_hub(pg_url: str, admin: ShopAdmin) -> Iterator[Hub]:
    cfg = shop_config(admin.url)
    hub = Hub(db=open_ledger(pg_url), runner=cfg.runner, http_timeout=5)
    apply_config(hub, cfg)
    yield attach(hub)
    hub.db.dispose()


def _ids(hub: Hub) -> tuple[Any, int]:
    with hub.db.connect() as conn:
        return hub.connection(conn, "shop"), hub.connection(conn, "wms").id


def _queued(hub: Hub) -> list[tuple[str, str]]:
    with hub.db.connect() as conn:
        return [(str(r[0]), str(r[1])) for r in conn.execute(sa.text(
            "SELECT lock, status::text FROM procrastinate_jobs ORDER BY id"))]


def _order(oid: str) -> Any:
    return shop._map({"id": oid, "number": f"PO-{oid}", "created": "2026-11-20T10:00:00+00:00", "name": "Ada",
                      "street": "1 Main St", "city": "Springfield", "lines": [{"sku": "SKU-1", "qty": 1}]})


@pytest.mark.postgres
def test_new_orders_queue_their_delivery_in_the_same_transaction(cluster_hub: Hub) -> None:
    hub = cluster_hub
    src, wms = _ids(hub)
    deliver = job_lock(wms, "deliver")

    with pytest.raises(RuntimeError), hub.db.begin() as conn:  # the write fails: no run is queued either
        hub.wake(conn, wms, "deliver")
        raise RuntimeError("rolled back")
    assert _queued(hub) == []

    assert store_items(hub, src, [_order("A1")], "poll") == {"new": 1}
    assert _queued(hub) == [(deliver, "todo")]
    assert store_items(hub, src, [_order("A2")], "poll") == {"new": 1}
    assert _queued(hub) == [(deliver, "todo")]  # one queued run serves both orders
    assert store_items(hub, src, [_order("A1")], "poll") == {"same": 1}


@pytest.mark.postgres
def test_a_queued_run_cannot_start_before_the_write_that_needs_it_commits(cluster_hub: Hub) -> None:
    hub = cluster_hub
    _, wms = _ids(hub)

    def fetch() -> Any:
        with hub.db.begin() as c:
            wid = c.execute(sa.text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")).scalar()
            return c.execute(sa.text("SELECT id FROM procrastinate_fetch_job_v2(ARRAY[:q]::varchar[], :w)"),
                             {"q": QUEUE, "w": wid}).scalar()

    with hub.db.begin() as conn:
        defer_in_transaction(conn, wms, "deliver")
    with hub.db.begin() as conn:  # a second write finds the run queued and holds it until it commits
        defer_in_transaction(conn, wms, "deliver")
        assert fetch() is None  # a worker skips it meanwhile
    assert fetch() is not None  # and gets it once the write is visible


@pytest.mark.postgres
def test_a_fetched_run_holds_no_lock_while_the_worker_is_busy(cluster_hub: Hub) -> None:
    """When Procrastinate's fetch comes back, the worker's event loop may be held by a blocking ledger
    write (the engine's writes are synchronous) that wants that very queue row: the row must be free
    by then, or the write waits for a commit that only the held loop could send."""
    hub = cluster_hub
    _, wms = _ids(hub)
    with hub.db.begin() as conn:
        defer_in_transaction(conn, wms, "deliver")
    seen: list[str] = []
    armed = False

    def probe(data: bytes) -> Any:  # psycopg decodes the fetched job's args here, on the worker's loop
        if armed and not seen:
            try:
                with hub.db.begin() as conn:
                    conn.execute(sa.text("SELECT id FROM procrastinate_jobs FOR UPDATE NOWAIT"))
                seen.append("free")
            except sa.exc.OperationalError as exc:
                seen.append(f"locked: {exc.orig}")
        return json.loads(data)

    async def fetch() -> Any:
        nonlocal armed
        app = make_app(hub.db)
        async with app.open_async():
            worker = await app.job_manager.register_worker()
            armed = True
            return await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker)

    psycopg.types.json.set_json_loads(probe)  # global: the pool's connections are made after this
    try:
        job = asyncio.run(fetch())
    finally:
        psycopg.types.json.set_json_loads(json.loads)
    assert job is not None and job.task_kwargs == {"connection_id": wms, "job": "deliver"}
    assert seen == ["free"]


@pytest.mark.postgres
def test_scheduler_queues_each_due_job_once_and_workers_run_them(cluster_hub: Hub, admin: ShopAdmin) -> None:
    hub = cluster_hub
    admin.order("P1")

    async def scenario() -> tuple[int, int, int]:
        app = make_app(hub.db)
        async with app.open_async():
            sched = Scheduler(hub, app)
            first = await sched.defer_due()
            again = await sched.defer_due()  # all queued already
            # One worker pass, in this process: runs everything queued, then returns.
            await app.run_worker_async(queues=[QUEUE], wait=False, concurrency=4, install_signal_handlers=False,
                                       additional_context={"hub": hub}, delete_jobs="successful")
            later = await sched.defer_due()  # every job ran and is not due before its period
        await hub.aclose()
        return first, again, later

    first, again, later = asyncio.run(scenario())
    assert (first, again) == (8, 0)  # shop: download workflow upload inventory cancels; wms: deliver shipments stock
    assert later <= 1  # at most the delivery that the download queued, if it was not picked up in that pass
    with hub.db.connect() as conn:
        ran = conn.execute(sa.select(t.job_runs.c.job).where(t.job_runs.c.status == "ok")).scalars().all()
    assert {"download", "deliver"} <= set(ran)
    assert len(ran) >= 8


@pytest.mark.postgres
def test_a_dead_workers_runs_are_requeued_and_its_leases_freed(cluster_hub: Hub) -> None:
    hub = cluster_hub
    src, wms = _ids(hub)

    async def scenario() -> tuple[str, str | None, int]:
        app = make_app(hub.db)
        async with app.open_async():
            jm = app.job_manager
            task = app.tasks["orderbridge.run_job"]
            dead = await jm.register_worker()
            for conn_id, job in ((wms, "deliver"), (src.id, "upload")):
                lock = job_lock(conn_id, job)
                await task.configure(lock=lock, queueing_lock=lock).defer_async(connection_id=conn_id, job=job)
                assert await jm.fetch_job(queues=[QUEUE], worker_id=dead) is not None
            # A run of the upload job was queued again meanwhile: the dead one is dropped, not doubled.
            lock = job_lock(src.id, "upload")
            await task.configure(lock=lock, queueing_lock=lock).defer_async(connection_id=src.id, job="upload")
            with hub.db.begin() as conn:
                conn.execute(t.job_state.insert().values(
                    connection_id=wms, job="deliver", lease_owner=f"otherhost:4242:w{dead}-abcd1234",
                    lease_expires_at=utcnow() + timedelta(seconds=120), last_status="", last_error="",
                    last_processed=0))
                conn.execute(sa.text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 minute' "
                                     "WHERE id = :w"), {"w": dead})
            sched = Scheduler(hub, app, stalled_after=10)
            assert await sched.requeue_stalled() == 2
            assert sched.requeued == 1
            with hub.db.connect() as conn:
                owner = conn.execute(sa.select(t.job_state.c.lease_owner).where(
                    t.job_state.c.connection_id == wms)).scalar()
                workers = conn.execute(sa.text("SELECT count(*) FROM procrastinate_workers")).scalar_one()
        return "freed", owner, workers

    _, owner, workers = asyncio.run(scenario())
    assert owner is None  # the lease of the dead worker is free at once, not in 120 s
    assert workers == 0  # and the dead worker is forgotten
    assert sorted(_queued(hub)) == sorted([(job_lock(wms, "deliver"), "todo"), (job_lock(src.id, "upload"), "todo")])


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_a_stopped_worker_returns_after_its_grace_period_even_with_a_run_hanging(pg_url: str) -> None:
    """The shop accepts connections and never answers, so the download run would wait ten minutes for
    it. Once its stop event is set, the worker takes no new run, cancels that run after the grace
    period and returns; the run's lease is left to expire, so a later run picks the job up again."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections complete in the backlog; nothing is ever read or answered
        cfg = shop_config(f"http://127.0.0.1:{silent.getsockname()[1]}")
        hub = Hub(db=open_ledger(pg_url), runner=cfg.runner, http_timeout=600)
        apply_config(hub, cfg)
        attach(hub)
        src, _ = _ids(hub)
        with hub.db.begin() as conn:
            defer_in_transaction(conn, src.id, "download")

        def running() -> int:
            with hub.db.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(t.job_runs).where(
                    t.job_runs.c.status == "running")).scalar_one())

        async def scenario() -> None:
            stop = asyncio.Event()
            worker = asyncio.create_task(run_worker(hub, concurrency=2, stop=stop, grace=1.0, name="t"))
            while not running():  # the download has started and waits for the shop
                assert not worker.done(), worker
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.wait_for(worker, 120)  # far short of the run's own ten minutes

        asyncio.run(scenario())
    abandoned = running()
    with hub.db.connect() as conn:
        queued = conn.execute(sa.text("SELECT status::text FROM procrastinate_jobs")).scalars().all()
        workers = conn.execute(sa.text("SELECT count(*) FROM procrastinate_workers")).scalar_one()
        lease = conn.execute(sa.select(t.job_state.c.lease_owner).where(
            t.job_state.c.connection_id == src.id, t.job_state.c.job == "download")).scalar_one()
    hub.db.dispose()
    assert queued == ["aborted"]  # cancelled by the worker's shutdown, not left "doing"
    assert workers == 0  # the worker unregistered: it stopped itself, nothing killed it
    assert lease is not None and abandoned == 1  # abandoned mid-run: the lease expires, the job resumes


@pytest.mark.postgres
def test_the_call_budget_is_shared_by_processes_of_the_cluster(pg_url: str) -> None:
    open_ledger(pg_url).dispose()  # migrated: rate_buckets exists
    spec = RateSpec(calls=20, period=1.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:  # each "process" with its own engine: the database is all they share
        budget = PgBudget(open_ledger(pg_url, migrate=False))

        async def go() -> None:
            for _ in range(15):
                await budget.acquire("acct:1", spec)
                with lock:
                    stamps.append(time.monotonic())

        asyncio.run(go())
        budget.engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    stamps.sort()
    assert len(stamps) == 30
    # Each call may still be up to half the jitter on its way to the API after this stamp: even the
    # earliest of a window arriving that late, the window holds no more than the limit.
    span = 1.0 + JITTER / 2
    assert max(sum(1 for s in stamps if a <= s < a + span) for a in stamps) <= 20
    assert stamps[-1] - stamps[0] >= 29 / 20  # 30 calls at 20/s (less the jitter): spread, not bursted

    other = PgBudget(open_ledger(pg_url, migrate=False))
    began = time.monotonic()
    asyncio.run(other.acquire("acct:2", spec))  # another account is not slowed by the first
    assert time.monotonic() - began < 0.5
    other.engine.dispose()


@pytest.mark.postgres
def test_calls_woken_late_by_a_busy_loop_do_not_leave_together(pg_url: str) -> None:
    """Calls waiting for their slots while the event loop is blocked would all leave when it frees:
    those woken later than half the jitter allows take fresh slots, so no 1 s window holds more than
    the budget."""
    open_ledger(pg_url).dispose()
    spec = RateSpec(calls=10, period=1.0)
    budget = PgBudget(open_ledger(pg_url, migrate=False))
    stamps: list[float] = []

    async def one() -> None:
        await budget.acquire("acct:stall", spec)
        stamps.append(time.monotonic())

    async def go() -> None:
        tasks = [asyncio.create_task(one()) for _ in range(20)]
        await asyncio.sleep(0.05)  # every call has its slot and sleeps
        time.sleep(1.5)  # noqa: ASYNC251 - the loop is blocked on purpose: busy elsewhere meanwhile
        await asyncio.gather(*tasks)

    asyncio.run(go())
    budget.engine.dispose()
    stamps.sort()
    assert len(stamps) == 20
    assert max(sum(1 for s in stamps if a <= s < a + 1.0) for a in stamps) <= 10


@pytest.mark.postgres
def test_db_upgrade_creates_the_job_queue_on_postgresql(pg_url: str) -> None:
    def upgrade() -> str:
        result = subprocess.run([sys.executable, "-m", "orderbridge", "db", "upgrade"], capture_output=True,
                                text=True, timeout=60, cwd=ROOT, env={**os.environ, "ORDERBRIDGE_DATABASE_URL": pg_url})
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "job queue schema applied" in upgrade()
    assert "job queue schema already in place" in upgrade()
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None
        assert conn.execute(sa.text("SELECT to_regclass('rate_buckets')")).scalar() is not None
    engine.dispose()


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_the_distributed_runner_refuses_sqlite_with_the_fix(command: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "orderbridge", command], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, env={**os.environ, "ORDERBRIDGE_DATABASE_URL":
                                                       f"sqlite:///{tmp_path / 'ledger.sqlite'}"})
    assert result.returncode == 2
    assert "error: the distributed runner needs PostgreSQL" in result.stderr
    assert "fix: set ORDERBRIDGE_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "ledger.sqlite").exists()  # refused before creating anything


def test_metrics_endpoint_in_prometheus_text(db_url: str, admin: ShopAdmin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_METRICS_TOKEN", "scrape-me")
    cfg = shop_config(admin.url)
    hub = Hub(db=open_ledger(db_url), runner=cfg.runner, http_timeout=5)
    apply_config(hub, cfg)
    if hub.db.dialect.name == "postgresql":
        attach(hub)
    src, _ = _ids(hub)
    store_items(hub, src, [_order("M1"), _order("M2")], "poll")
    with ServedApp(create_app(hub, with_runner=False)) as web:
        refused = [httpx.get(web.url + "/metrics", headers=h, timeout=10)
                   for h in ({}, {"Authorization": "Bearer wrong"})]
        r = httpx.get(web.url + "/metrics", headers={"Authorization": "Bearer scrape-me"}, timeout=10)
    hub.db.dispose()
    assert [x.status_code for x in refused] == [401, 401] and "orderbridge_orders" not in refused[0].text
    assert "ORDERBRIDGE_METRICS_TOKEN" in refused[0].json()["fix"]
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'orderbridge_orders{status="new"} 2.0' in r.text
    assert 'orderbridge_deliveries{state="pending"} 2.0' in r.text
    assert "orderbridge_job_lag_max_seconds" in r.text
    if db_url.startswith("sqlite"):
        assert "orderbridge_queue_jobs" not in r.text  # the embedded runner has no queue
    else:
        assert 'orderbridge_queue_jobs{status="todo"} 1.0' in r.text  # the delivery the orders queued
