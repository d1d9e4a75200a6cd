"""Backing up and restoring the ledger.

SQLite: SQLite's online backup API, which copies a consistent snapshot while the runner keeps
writing. PostgreSQL: pg_dump / pg_restore (custom format), when they are installed.
A restore refuses a file that is damaged or whose schema this orderbridge does not know, and
refuses while a runner holds job leases (it would keep writing into the ledger being replaced).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from orderbridge.connectors.errors import ConfigError
from orderbridge.domain.models import utcnow
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import _alembic_config, describe

PG_DUMP_MAGIC = b"PGDMP"


@dataclass
class BackupInfo:
    path: Path
    kind: str  # sqlite or postgresql
    revision: str | None
    orders: int | None = None


def _kind(engine: Engine) -> str:
    return engine.url.get_backend_name()


def _sqlite_file(engine: Engine) -> Path:
    name = engine.url.database
    if not name or name == ":memory:":
        raise ConfigError("an in-memory ledger cannot be backed up or restored",
                          fix="point ORDERBRIDGE_DATABASE_URL at a SQLite file or a PostgreSQL database")
    return Path(name)


def _libpq_url(engine: Engine) -> str:
    """The URL as pg_dump / pg_restore take it (no SQLAlchemy driver suffix)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ConfigError(
            f"{name} was not found, and a PostgreSQL ledger is backed up and restored with it",
            fix=f"install the PostgreSQL client tools (e.g. apt install postgresql-client) or run {name} "
                "yourself against the database")
    return found


def known_revisions() -> dict[str, int]:
    """Every migration this orderbridge knows, with its position (0 = the first)."""
    script = ScriptDirectory.from_config(_alembic_config(sa.create_engine("sqlite://")))
    chain = list(reversed(list(script.walk_revisions())))
    return {rev.revision: i for i, rev in enumerate(chain)}


def _refuse(path: Path, why: str, fix: str) -> ConfigError:
    return ConfigError(f"{path} cannot be restored: {why}", fix=fix)


# ----------------------------------------------------------------------------- backup


def backup(engine: Engine, path: Path) -> BackupInfo:
    if path.exists():
        raise ConfigError(f"{path} already exists", fix="choose a new file name (a backup never overwrites a file)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if _kind(engine) == "sqlite":
        source = _sqlite_file(engine)
        if not source.exists():
            raise ConfigError(f"the ledger {source} does not exist yet", fix="run orderbridge db upgrade first")
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(path)
        try:
            src.execute("PRAGMA busy_timeout=30000")
            src.backup(dst)  # a consistent snapshot, page by page, while others keep writing
        finally:
            dst.close()
            src.close()
        return inspect_sqlite(path)
    if _kind(engine) == "postgresql":
        done = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path),
                               "--dbname", _libpq_url(engine)], capture_output=True, text=True)
        if done.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise ConfigError(f"pg_dump failed: {done.stderr.strip()[-500:]}",
                              fix="check that pg_dump's version is at least the server's, and the database URL")
        return inspect_pg_dump(path)
    raise ConfigError(f"cannot back up a {_kind(engine)} database", fix="use SQLite or PostgreSQL")


# ---------------------------------------------------------------------------- inspect


def inspect_sqlite(path: Path) -> BackupInfo:
    """Integrity and schema revision of a SQLite ledger file (never modified)."""
    if not path.is_file():
        raise _refuse(path, "no such file", "give the path of a file made by orderbridge db backup")
    with path.open("rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise _refuse(path, "it is not a SQLite database", "give a file made by orderbridge db backup")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                raise _refuse(path, f"the integrity check failed ({'; '.join(result[:3])})",
                              "use another backup")
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            orders = conn.execute("SELECT count(*) FROM orders").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _refuse(path, f"SQLite cannot read it ({exc})", "use another backup") from None
    return BackupInfo(path, "sqlite", revision[0] if revision else None, int(orders[0]) if orders else None)


def inspect_pg_dump(path: Path) -> BackupInfo:
    if not path.is_file():
        raise _refuse(path, "no such file", "give the path of a file made by orderbridge db backup")
    with path.open("rb") as fh:
        if fh.read(5) != PG_DUMP_MAGIC:
            raise _refuse(path, "it is not a pg_dump archive (custom format)", "give a file made by orderbridge "
                          "db backup on a PostgreSQL ledger")
    data = subprocess.run([_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(path)],
                          capture_output=True, text=True)
    if data.returncode != 0:
        raise _refuse(path, f"pg_restore cannot read it ({data.stderr.strip()[-300:]})", "use another backup")
    lines = data.stdout.splitlines()
    revision = None
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines) and lines[i + 1] != "\\.":
            revision = lines[i + 1].strip()
    return BackupInfo(path, "postgresql", revision)


def _check_revision(info: BackupInfo) -> None:
    known = known_revisions()
    if info.revision is None:
        raise _refuse(info.path, "it holds no orderbridge schema version", "give a file made by orderbridge db backup")
    if info.revision not in known:
        raise _refuse(info.path, f"its schema version {info.revision!r} is unknown to this orderbridge (made by a "
                      "newer version?)", "restore it with the orderbridge version that made it, or upgrade")


# ---------------------------------------------------------------------------- restore


def active_leases(engine: Engine) -> list[str]:
    """Job leases held now by a live runner: (connection id, job, owner) in words."""
    from orderbridge.engine.jobs import _holder_dead

    js = t.job_state
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(js.c.connection_id, js.c.job, js.c.lease_owner).where(
                js.c.lease_owner.isnot(None), js.c.lease_expires_at > utcnow())).all()
    except sa.exc.SQLAlchemyError:
        return []  # no ledger yet: nobody runs on it
    return [f"{r.job} of connection {r.connection_id} (runner {r.lease_owner})" for r in rows
            if not _holder_dead(r.lease_owner)]


def restore(engine: Engine, path: Path, *, force: bool = False) -> BackupInfo:
    kind = _kind(engine)
    info = inspect_sqlite(path) if kind == "sqlite" else inspect_pg_dump(path) if kind == "postgresql" else None
    if info is None:
        raise ConfigError(f"cannot restore into a {kind} database", fix="use SQLite or PostgreSQL")
    _check_revision(info)
    held = active_leases(engine)
    if held and not force:
        raise ConfigError(
            f"a runner is working on {describe(engine)}: {'; '.join(held[:3])}"
            + (f" and {len(held) - 3} more" if len(held) > 3 else ""),
            fix="stop orderbridge serve / sync first (or wait for the leases to expire), or add --force")
    if kind == "sqlite":
        target = _sqlite_file(engine)
        target.parent.mkdir(parents=True, exist_ok=True)
        engine.dispose()
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dst = sqlite3.connect(target)
        try:
            dst.execute("PRAGMA busy_timeout=30000")
            src.backup(dst)  # through SQLite's own locking and journal: the WAL stays consistent
        finally:
            dst.close()
            src.close()
        return inspect_sqlite(target)
    done = subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                           "--dbname", _libpq_url(engine), str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"pg_restore failed: {done.stderr.strip()[-500:]}",
                          fix="nothing was changed (it runs in one transaction); check the message above")
    return info
