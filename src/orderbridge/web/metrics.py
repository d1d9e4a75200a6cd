"""What to watch, read from the ledger on each scrape: `/metrics` (Prometheus text) and `orderbridge jobs queue`.

Every figure is computed from the database, so any web process of a cluster reports the whole
cluster, and a scrape costs a handful of small queries.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.engine import Engine

from orderbridge.domain.models import utcnow
from orderbridge.ledger import schema as t

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Figures about a business's orders are not public: a scraper sends this token as a bearer token.
TOKEN_ENV = "ORDERBRIDGE_METRICS_TOKEN"


def authorized(header: str) -> bool:
    """True for `Bearer <token>` with the configured token; with no token configured, nobody is."""
    expected = os.environ.get(TOKEN_ENV, "")
    return bool(expected) and hmac.compare_digest(header.encode(), f"Bearer {expected}".encode())

_QUEUE_COUNTS = sa.text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
_OLDEST_WAITING = sa.text(
    """
    SELECT EXTRACT(EPOCH FROM now() - min(e.at))
      FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
     WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
    """
)
_WORKERS = sa.text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - interval '30 seconds'")


@dataclass
class Snapshot:
    orders: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    # (connection, job) -> seconds past its due time, for runs not started yet
    overdue: dict[tuple[str, str], float] = field(default_factory=dict)
    failing: list[tuple[str, str]] = field(default_factory=list)
    running: int = 0
    open_alerts: int = 0
    queue: dict[str, int] | None = None  # None: no job queue (embedded runner)
    oldest_waiting_seconds: float = 0.0
    workers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders, "deliveries": self.deliveries,
            "job_lag_seconds": max(self.overdue.values(), default=0.0),
            "overdue": {f"{c} {j}": round(s, 1) for (c, j), s in sorted(self.overdue.items())},
            "failing_jobs": [f"{c} {j}" for c, j in self.failing], "running_jobs": self.running,
            "open_alerts": self.open_alerts, "queue": self.queue,
            "oldest_waiting_seconds": round(self.oldest_waiting_seconds, 1), "workers": self.workers,
        }


def snapshot(engine: Engine) -> Snapshot:
    snap = Snapshot()
    now = utcnow()
    js, c = t.job_state, t.connections
    with engine.connect() as conn:
        snap.orders = {str(k): int(v) for k, v in conn.execute(
            sa.select(t.orders.c.status, sa.func.count()).group_by(t.orders.c.status))}
        snap.deliveries = {str(k): int(v) for k, v in conn.execute(
            sa.select(t.deliveries.c.state, sa.func.count()).group_by(t.deliveries.c.state))}
        for r in conn.execute(sa.select(c.c.name, js.c.job, js.c.next_run_at, js.c.lease_owner, js.c.last_status)
                              .join(c, c.c.id == js.c.connection_id).where(c.c.enabled.is_(True))):
            if r.lease_owner:
                snap.running += 1
            elif r.next_run_at is not None and r.next_run_at < now:
                snap.overdue[(r.name, r.job)] = (now - r.next_run_at).total_seconds()
            if r.last_status == "failed":
                snap.failing.append((r.name, r.job))
        snap.open_alerts = int(conn.execute(sa.select(sa.func.count()).select_from(t.alerts).where(
            t.alerts.c.resolved_at.is_(None))).scalar_one())
        if conn.dialect.name == "postgresql" and conn.execute(
                sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            snap.queue = {str(k): int(v) for k, v in conn.execute(_QUEUE_COUNTS)}
            snap.oldest_waiting_seconds = max(0.0, float(conn.execute(_OLDEST_WAITING).scalar() or 0.0))
            snap.workers = int(conn.execute(_WORKERS).scalar_one())
    return snap


class _LedgerCollector:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        snap = snapshot(self.engine)
        orders = GaugeMetricFamily("orderbridge_orders", "Orders in the ledger by status", labels=["status"])
        for k, v in sorted(snap.orders.items()):
            orders.add_metric([k], v)
        yield orders
        deliveries = GaugeMetricFamily("orderbridge_deliveries", "Deliveries to backends by step state",
                                       labels=["state"])
        for k, v in sorted(snap.deliveries.items()):
            deliveries.add_metric([k], v)
        yield deliveries
        lag = GaugeMetricFamily("orderbridge_job_lag_seconds",
                                "How long past its due time a job run has not started (0 when on time)",
                                labels=["connection", "job"])
        for (conn_name, job), secs in sorted(snap.overdue.items()):
            lag.add_metric([conn_name, job], secs)
        yield lag
        yield GaugeMetricFamily("orderbridge_job_lag_max_seconds", "The largest job lag",
                                value=max(snap.overdue.values(), default=0.0))
        yield GaugeMetricFamily("orderbridge_jobs_running", "Job runs holding a lease now", value=snap.running)
        yield GaugeMetricFamily("orderbridge_jobs_failing", "Jobs whose last run failed", value=len(snap.failing))
        yield GaugeMetricFamily("orderbridge_alerts_open", "Open alerts", value=snap.open_alerts)
        if snap.queue is not None:
            depth = GaugeMetricFamily("orderbridge_queue_jobs", "Job runs in the queue by status", labels=["status"])
            for status in ("todo", "doing", "failed", "succeeded", "cancelled", "aborted"):
                depth.add_metric([status], snap.queue.get(status, 0))
            yield depth
            yield GaugeMetricFamily("orderbridge_queue_oldest_waiting_seconds",
                                    "Age of the oldest queued run that could start now",
                                    value=snap.oldest_waiting_seconds)
            yield GaugeMetricFamily("orderbridge_workers_alive", "Workers with a heartbeat in the last 30 s",
                                    value=snap.workers)


def render(engine: Engine) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LedgerCollector(engine))
    return generate_latest(registry)
