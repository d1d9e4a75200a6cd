"""The Hub: the ledger engine, the secret box, runner options and live connector instances."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from orderbridge.config import DEFAULT_SCHEDULE, RunnerConfig
from orderbridge.connectors.base import BackendConnector, Connector, SourceConnector
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.http import RateBudget, RateSpec
from orderbridge.connectors.registry import build_connector, connector_class
from orderbridge.domain.models import utcnow
from orderbridge.engine.deadlocks import own_transaction
from orderbridge.engine.off_loop import off_loop, statements_wait
from orderbridge.ledger import schema as t
from orderbridge.ledger.secrets import SecretBox

log = logging.getLogger("orderbridge.engine")
T = TypeVar("T")


@dataclass
class ConnectionRow:
    id: int
    name: str
    merchant_id: int
    merchant: str
    type: str
    role: str
    enabled: bool
    settings: dict[str, Any]
    base_url: str
    test_mode: bool
    schedule: dict[str, float]
    credentials_enc: str
    updated_at: Any
    rate_limit: dict[str, Any] | None = None

    def period(self, job: str) -> float:
        """Seconds between two runs of one of its jobs: its schedule's, or the default."""
        return float(self.schedule.get(job, DEFAULT_SCHEDULE[job]))


@dataclass
class RouteRow:
    id: int
    source_id: int
    backend_id: int
    options: dict[str, Any]
    backend_options: dict[str, Any]
    enabled: bool


@dataclass
class Hub:
    db: Engine
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    secrets: SecretBox | None = None
    budget: RateBudget | None = None
    http_timeout: float = 30.0
    # Set by the distributed runner: queue a job run inside the caller's ledger transaction.
    waker: Callable[[Connection, int, str], None] | None = None
    _live: dict[int, tuple[Any, Connector]] = field(default_factory=dict)
    _group_commit: Any = None  # engine/group_commit.py, created on first use in the running loop
    memo: dict[str, Any] = field(default_factory=dict)  # short-lived sums the engine shares between runs

    def box(self) -> SecretBox:
        if self.secrets is None:
            self.secrets = SecretBox()
        return self.secrets

    def begin(self) -> Any:
        return self.db.begin()

    def wake(self, conn: Connection, connection_id: int, job: str) -> None:
        """Ask for a run of a connection's job soon, as part of the transaction on ``conn``.

        The write that makes the run necessary and the request for it commit (or roll back)
        together. Without a distributed runner this does nothing: jobs run on their schedule.
        """
        if self.waker is not None:
            self.waker(conn, connection_id, job)

    def wake_by(self, conn: Connection, connection_id: int, job: str, at: datetime) -> None:
        """Ask for a run of a connection's job no later than ``at``: woken now if that time has
        passed, else its next run (``job_state``, which every runner reads) brought forward to it."""
        now = utcnow()
        if at <= now:
            self.wake(conn, connection_id, job)
            at = now
        js = t.job_state
        conn.execute(js.update().where(js.c.connection_id == connection_id, js.c.job == job,
                                       sa.or_(js.c.next_run_at.is_(None), js.c.next_run_at > at))
                     .values(next_run_at=at))

    # ------------------------------------------------------------------------ connections
    def connection(self, conn: Connection, ident: int | str) -> ConnectionRow:
        c = t.connections
        row = conn.execute(_connections_query().where(c.c.id == ident if isinstance(ident, int) else c.c.name == ident)
                           ).mappings().first()
        if row is None:
            raise ConfigError(f"no connection named {ident!r}", fix="see `orderbridge connections list`")
        return _connection_row(row)

    def connections(self, conn: Connection, *, enabled_only: bool = False) -> list[ConnectionRow]:
        """Every connection (or every enabled one) in one query: the runners read them each tick."""
        q = _connections_query().order_by(t.connections.c.id)
        if enabled_only:
            q = q.where(t.connections.c.enabled.is_(True))
        return [_connection_row(r) for r in conn.execute(q).mappings()]

    async def ledger_work(self, fn: Callable[[], T]) -> T:
        """``fn()``, a piece of work on the ledger, from async code.

        On PostgreSQL it runs in a worker thread: each statement waits on the server, and the
        event loop goes on with API calls meanwhile. On SQLite it runs here: its statements cost
        CPU rather than waiting, and a second thread would only share the core and the writer's lock.
        """
        if statements_wait(self.db):
            return await off_loop(fn)
        return fn()

    async def in_ledger(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in a transaction, committed when this returns.

        On PostgreSQL a transaction of its own, in a worker thread (see ``ledger_work``). On
        SQLite it joins the group commit (``JobContext.write``), as the steps' writes do: run
        here, committed in a worker thread. A transaction of its own here would wait, with the
        event loop, for the write lock while a group's commit waits for the disk, and then wait
        for the disk itself."""
        if statements_wait(self.db):
            return await self.in_transaction(fn)
        from orderbridge.engine.group_commit import group_commit

        return await group_commit(self).run(fn)

    async def in_transaction(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in a transaction of its own (see ``ledger_work``): for the intake's pages,
        which on SQLite keep the loop to themselves while read and stored (as ``ledger_work``
        with ``intake.store_items``). A page that waited for a group's commit would stay in
        memory meanwhile, while other stores' pages are fetched and parsed: the ten stores' first
        reads of a backlog at once (about a quarter more peak memory at 10,000 orders). Run again
        should the server abort it to break a deadlock (engine/deadlocks.py)."""
        return await self.ledger_work(lambda: own_transaction(self.db, fn))

    def route_for_source(self, conn: Connection, source_id: int) -> RouteRow | None:
        row = conn.execute(sa.select(t.routes).where(t.routes.c.source_id == source_id)).mappings().first()
        return RouteRow(**{k: row[k] for k in RouteRow.__dataclass_fields__}) if row else None

    def routes_to_backend(self, conn: Connection, backend_id: int) -> list[RouteRow]:
        rows = conn.execute(sa.select(t.routes).where(t.routes.c.backend_id == backend_id)).mappings()
        return [RouteRow(**{k: r[k] for k in RouteRow.__dataclass_fields__}) for r in rows]

    def connector(self, row: ConnectionRow) -> Connector:
        """A live connector instance for the connection, rebuilt when its row changes."""
        cached = self._live.get(row.id)
        if cached and cached[0] == row.updated_at:
            return cached[1]
        creds = self.box().open(row.credentials_enc)
        instance = build_connector(
            row.type,
            name=row.name,
            settings=row.settings,
            credentials=creds,
            base_url=row.base_url,
            test_mode=row.test_mode,
            merchant=row.merchant,
            connection_id=row.id,
            budget=self.budget,
            timeout=self.http_timeout,
            rate=RateSpec(**row.rate_limit) if row.rate_limit else None,
            ledger=self.db,
        )
        self._live[row.id] = (row.updated_at, instance)
        return instance

    def source(self, row: ConnectionRow) -> SourceConnector:
        inst = self.connector(row)
        if not isinstance(inst, SourceConnector):
            raise ConfigError(f"connection {row.name!r} is not a source")
        return inst

    def backend(self, row: ConnectionRow) -> BackendConnector:
        inst = self.connector(row)
        if not isinstance(inst, BackendConnector):
            raise ConfigError(f"connection {row.name!r} is not a backend")
        return inst

    def route_options_for(self, backend: BackendConnector, route: RouteRow) -> Any:
        from orderbridge.connectors.registry import parse_model

        return parse_model(backend.route_options_model, route.backend_options, "route backend options")

    def capabilities(self, row: ConnectionRow) -> Any:
        return connector_class(row.type).capabilities

    async def aclose(self) -> None:
        for _, inst in self._live.values():
            await inst.aclose()
        self._live.clear()


def _connections_query() -> sa.Select[Any]:
    c, m = t.connections, t.merchants
    return sa.select(c, m.c.name.label("merchant")).join(m, m.c.id == c.c.merchant_id)


def _connection_row(row: Any) -> ConnectionRow:
    return ConnectionRow(
        id=row["id"], name=row["name"], merchant_id=row["merchant_id"], merchant=row["merchant"],
        type=row["type"], role=row["role"], enabled=row["enabled"], settings=row["settings"] or {},
        base_url=row["base_url"], test_mode=row["test_mode"], schedule=row["schedule"] or {},
        credentials_enc=row["credentials_enc"], updated_at=row["updated_at"], rate_limit=row["rate_limit"],
    )
