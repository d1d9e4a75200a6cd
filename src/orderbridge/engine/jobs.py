"""The job table and one job run: lease, run, record health.

A lease row per (connection, job) in ``job_state`` guarantees at most one run at a time across
every process sharing the ledger; it expires, so a run killed mid-way blocks nobody for long
(and a dead holder on this host is recognised at once by its pid).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from orderbridge.connectors.base import Capabilities
from orderbridge.connectors.errors import AuthError, ConfigError, ConnectorError
from orderbridge.domain.models import utcnow
from orderbridge.engine import cancels, delivery, fulfilment, intake, inventory
from orderbridge.engine.context import JobAborted, JobContext
from orderbridge.engine.hub import ConnectionRow, Hub
from orderbridge.engine.timeline import alert, resolve_alert
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import new_id
from orderbridge.ledger.prepared import ROW_ID, insert_into, update_by_id
from orderbridge.logs import redact

log = logging.getLogger("orderbridge.jobs")


@dataclass(frozen=True)
class JobSpec:
    name: str
    role: str
    applies: Callable[[Capabilities], bool]
    run: Callable[[JobContext], Awaitable[None]]
    title: str


JOBS: dict[str, JobSpec] = {
    j.name: j
    for j in [
        JobSpec("download", "source", lambda c: c.download, intake.download, "order download"),
        JobSpec("workflow", "source", lambda c: c.workflow, delivery.workflow, "source workflow"),
        JobSpec("deliver", "backend", lambda c: c.deliver, delivery.deliver, "order delivery"),
        JobSpec("shipments", "backend", lambda c: c.shipment_pickup, fulfilment.pickup, "shipment pickup"),
        JobSpec("upload", "source", lambda c: c.shipment_upload, fulfilment.upload, "shipment upload"),
        JobSpec("stock", "backend", lambda c: c.inventory_pickup, inventory.stock, "inventory pickup"),
        JobSpec("inventory", "source", lambda c: c.inventory_push, inventory.push, "inventory push"),
        JobSpec("cancels", "source", lambda c: c.cancel_detection or c.download, cancels.cancels,
                "cancel download"),
    ]
}


def jobs_for(hub: Hub, row: ConnectionRow) -> list[JobSpec]:
    caps = hub.capabilities(row)
    return [j for j in JOBS.values() if j.role == row.role and j.applies(caps)]


OWNER_PREFIX = f"{socket.gethostname()}:{os.getpid()}:"


def new_owner() -> str:
    return OWNER_PREFIX + uuid.uuid4().hex[:8]


def _holder_dead(owner: str | None) -> bool:
    """True when the lease holder is a process of this host that no longer exists."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(hub: Hub, connection_id: int, job: str, owner: str) -> bool:
    with hub.db.begin() as conn:
        return _acquire(conn, hub, connection_id, job, owner)


def _acquire(conn: Connection, hub: Hub, connection_id: int, job: str, owner: str) -> bool:
    js = t.job_state
    now = utcnow()
    until = now + timedelta(seconds=hub.runner.lease_seconds)
    key = {"the_connection": connection_id, "the_job": job}
    row = conn.execute(_lease_of(), key).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(js.insert().values(connection_id=connection_id, job=job, lease_owner=owner,
                                                lease_expires_at=until, last_started_at=now, last_error=""))
            return True
        except IntegrityError:
            return False
    res = conn.execute(_take_lease(_holder_dead(row.lease_owner)), {
        **key, "now": now, "holder": row.lease_owner, "lease_owner": owner, "lease_expires_at": until,
        "last_started_at": now})
    return res.rowcount == 1


def _this_job() -> Any:
    js = t.job_state
    # Not named after the columns: in an UPDATE those names are the values to SET.
    return sa.and_(js.c.connection_id == sa.bindparam("the_connection"), js.c.job == sa.bindparam("the_job"))


@functools.cache
def _lease_of() -> Any:
    js = t.job_state
    return sa.select(js.c.lease_owner, js.c.lease_expires_at).where(_this_job())


@functools.cache
def _take_lease(holder_dead: bool) -> Any:
    """The lease, when free (or held by :holder, a process known dead)."""
    js = t.job_state
    free = sa.or_(js.c.lease_owner.is_(None), js.c.lease_expires_at < sa.bindparam("now"))
    if holder_dead:
        free = sa.or_(free, js.c.lease_owner == sa.bindparam("holder"))
    return js.update().where(_this_job(), free)


@functools.cache
def _give_back() -> Any:
    js = t.job_state
    return js.update().where(_this_job(), js.c.lease_owner == sa.bindparam("owner"))


def renew(hub: Hub, connection_id: int, job: str, owner: str) -> None:
    js = t.job_state
    with hub.db.begin() as conn:
        conn.execute(js.update().where(js.c.connection_id == connection_id, js.c.job == job,
                                       js.c.lease_owner == owner)
                     .values(lease_expires_at=utcnow() + timedelta(seconds=hub.runner.lease_seconds)))


def release(hub: Hub, row: ConnectionRow, job: str, owner: str, status: str, error: str, processed: int,
            next_run_in: float) -> None:
    with hub.db.begin() as conn:
        _release(conn, row, job, owner, status, error, processed, next_run_in)


def _release(conn: Connection, row: ConnectionRow, job: str, owner: str, status: str, error: str, processed: int,
             next_run_in: float) -> None:
    now = utcnow()
    conn.execute(_give_back(), {
        "the_connection": row.id, "the_job": job, "owner": owner, "lease_owner": None, "lease_expires_at": None,
        "last_finished_at": now, "last_status": status, "last_error": error, "last_processed": processed,
        "next_run_at": now + timedelta(seconds=next_run_in)})


@dataclass
class RunResult:
    job: str
    connection: str
    ran: bool
    status: str = ""
    processed: int = 0
    error: str = ""
    notes: str = ""


async def run_job(hub: Hub, row: ConnectionRow, job: str, owner: str | None = None) -> RunResult:
    """Run one job for one connection if nobody else is running it; record its health."""
    spec = JOBS[job]
    owner = owner or new_owner()
    ctx = JobContext(hub=hub, row=row, job=job)

    def lease(conn: Connection) -> int | None:  # the lease and the run's record in one transaction
        if not _acquire(conn, hub, row.id, job, owner):
            return None
        return new_id(conn.execute(insert_into(t.job_runs), {
            "connection_id": row.id, "job": job, "owner": owner, "started_at": ctx.started, "status": "running",
            "processed": 0, "error": ""}))

    run_id = await hub.in_ledger(lease)
    if run_id is None:
        return RunResult(job, row.name, ran=False)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(hub.runner.lease_seconds / 3)
            await hub.ledger_work(lambda: renew(hub, row.id, job, owner))

    beat = asyncio.create_task(heartbeat())
    status, error = "ok", ""
    alert_key = f"job:{row.id}:{job}"
    try:
        await spec.run(ctx)
    except JobAborted as exc:
        status, error = "failed", _describe(exc.cause)
    except (AuthError, ConfigError) as exc:
        status, error = "failed", _describe(exc)
    except Exception as exc:  # transient trouble or a bug: the next run tries again
        status, error = "failed", redact(f"{type(exc).__name__}: {exc}")[:2000]
        if not isinstance(exc, ConnectorError):
            log.exception("%s of %s failed", spec.title, row.name)
    finally:
        beat.cancel()

    def finish(conn: Connection) -> None:  # the run's outcome, its alert and the lease's release together
        conn.execute(update_by_id(t.job_runs), {
            ROW_ID: run_id, "finished_at": utcnow(), "status": status, "processed": ctx.processed, "error": error})
        if status == "failed" and error:
            alert(conn, kind="job_failed", key=alert_key, connection_id=row.id, merchant_id=row.merchant_id,
                  message=f"{spec.title} for {row.name} failed: {error}",
                  fix="check the connection's credentials and settings (orderbridge connections test "
                      f"{row.name}); the job keeps retrying")
        else:
            resolve_alert(conn, alert_key)
        _release(conn, row, job, owner, status, error, ctx.processed,
                 row.period(job) if status == "ok" else min(60.0, row.period(job) * 4))

    await hub.in_ledger(finish)
    await _persist_rotated_credentials(hub, row)
    return RunResult(job, row.name, ran=True, status=status, processed=ctx.processed, error=error,
                     notes="; ".join(ctx.notes))


def _describe(exc: AuthError | ConfigError) -> str:
    return redact(str(exc))


async def _persist_rotated_credentials(hub: Hub, row: ConnectionRow) -> None:
    """Connectors whose API rotates tokens hand the new ones back; keep them encrypted."""
    inst = hub._live.get(row.id)
    new = inst[1].rotated_credentials() if inst else None
    if not new:
        return
    with hub.db.begin() as conn:
        conn.execute(t.connections.update().where(t.connections.c.id == row.id).values(
            credentials_enc=hub.box().seal(dict(new))))
    # The row's updated_at is unchanged on purpose: the live instance already holds the new token.
