"""Opening the ledger: SQLite in the user's data directory by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from platformdirs import user_data_dir
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.pool import NullPool

from orderbridge import json_codec
from orderbridge.connectors.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def data_dir() -> Path:
    path = Path(os.environ.get("ORDERBRIDGE_DATA_DIR") or user_data_dir("orderbridge", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_url() -> str:
    return f"sqlite:///{data_dir() / 'orderbridge.sqlite'}"


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get("ORDERBRIDGE_DATABASE_URL") or default_url()


def _normalise(url: str) -> str:
    # Accept the URLs people paste (postgres://, postgresql://) and use psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the module issues no BEGIN of its own: ours is below
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; FULL: a committed step survives power loss.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _begin_immediate(dbapi_conn: Any) -> None:
    dbapi_conn.cursor().execute("BEGIN IMMEDIATE")


def create_engine(url: str | None = None) -> Engine:
    url = _normalise(resolve_url(url))
    try:
        sa_url = sa.make_url(url)
    except Exception as exc:
        raise ConfigError(
            f"database URL {url!r} is not valid: {exc}",
            fix="use sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME",
        ) from None
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            sa_url, poolclass=NullPool if os.environ.get("ORDERBRIDGE_SQLITE_NULLPOOL") else None,
            json_serializer=json_codec.dumps, json_deserializer=json_codec.loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # Take the write lock at BEGIN so two writers wait for each other instead of failing. The
        # dialect's own hook, not a "begin" event: any connection event makes SQLAlchemy look for
        # listeners around every statement (4 % of a hub's CPU, measured in the bench).
        engine.dialect.do_begin = _begin_immediate  # type: ignore[method-assign,assignment]
        return engine
    if sa_url.get_backend_name() == "postgresql":
        engine = sa.create_engine(sa_url, pool_size=10, max_overflow=20,
                                  json_serializer=json_codec.dumps, json_deserializer=json_codec.loads)
        _ping_when_idle(engine)
        return engine
    raise ConfigError(
        f"database {sa_url.get_backend_name()!r} is not supported",
        fix="use SQLite (the default) or PostgreSQL",
    )


@contextlib.contextmanager
def one_snapshot(db: Engine) -> Iterator[sa.Connection]:
    """A connection for a page read in several queries. On PostgreSQL they all see the ledger as of
    one moment (a REPEATABLE READ transaction): each statement otherwise sees what was committed
    before it, and an order's page could show its status from before a step its timeline already
    shows. On SQLite, a connection as it is (a transaction there would take the write lock)."""
    with db.connect() as conn:
        if db.dialect.name != "postgresql":
            yield conn
            return
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before use when it sat idle for a while (the server may have
    restarted, or a firewall dropped it); a dead one is replaced. A connection in steady use is
    not pinged: a ping per checkout is a round trip more for every transaction."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is dead: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection is dead")


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"cannot reach the database at {describe(engine)}: {reason}",
            fix="check ORDERBRIDGE_DATABASE_URL (or [database] url) and that the server is running",
        ) from None


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


# Any 64-bit number of our own: PostgreSQL advisory locks are keyed by integers.
_SETUP_LOCK = 0x0B1D_6E5E_7A9


@contextlib.contextmanager
def setup_lock(engine: Engine) -> Iterator[None]:
    """Serialise schema and configuration setup between processes starting at the same time.

    Several workers, a scheduler and a web process of one cluster start together; without this
    two of them could run the same migration, or insert the same connection, at once.
    """
    if engine.dialect.name != "postgresql":
        yield  # SQLite: every writer already takes the database lock at BEGIN
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_SETUP_LOCK})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_SETUP_LOCK})")
            conn.commit()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    check_reachable(engine)
    with setup_lock(engine):
        command.upgrade(_alembic_config(engine), "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config(sa.create_engine("sqlite://"))).get_current_head()


def open_ledger(url: str | None = None, *, migrate: bool = True) -> Engine:
    engine = create_engine(url)
    if migrate:
        upgrade(engine)
    else:
        check_reachable(engine)
    return engine


def new_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just created."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
