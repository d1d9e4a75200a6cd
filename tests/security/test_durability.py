"""The ledger survives SIGKILL during heavy writes; `orderbridge db backup` / `db restore`."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from orderbridge.cli import main as cli
from orderbridge.domain.models import utcnow
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import head_revision, open_ledger
from tests.conftest import _pg_database
from tests.support import heavy_writes

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def ob(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """The `orderbridge` command, run in this process as a user runs it (argv in, exit code out)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Outcome:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "argv", ["orderbridge", *args])
        capsys.readouterr()
        try:
            cli.run()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    return run


def write_then_kill(db_url: str, prefix: str, after: float) -> list[str]:
    """Fork a writer, SIGKILL it after ``after`` seconds of writing; the ids it reported committed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: its own engine, never returns
        os.close(read_end)
        try:
            heavy_writes.write_forever(db_url, prefix, os.fdopen(write_end, "w"))
        finally:
            os._exit(1)
    os.close(write_end)
    committed: list[str] = []
    with os.fdopen(read_end) as out:
        assert out.readline().strip() == "ready"
        committed.extend(out.readline().split())  # writing is under way: kill at a random moment from here
        reader = threading.Thread(target=lambda: [committed.extend(line.split()) for line in out], daemon=True)
        reader.start()
        time.sleep(after)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        reader.join(5)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return committed


def test_sigkill_during_heavy_writes_never_loses_a_committed_order(db_url: str) -> None:
    heavy_writes.prepare(db_url)
    rng = random.Random(5)
    committed: list[str] = []
    for round_ in range(15):
        committed += write_then_kill(db_url, f"R{round_}", rng.uniform(0.0, 0.4))
        engine = open_ledger(db_url)  # every restart opens (and checks) the ledger again
        with engine.connect() as conn:
            stored = set(conn.execute(sa.select(t.orders.c.external_id)).scalars())
            lines = conn.execute(sa.select(sa.func.count()).select_from(t.order_lines)).scalar_one()
            if db_url.startswith("sqlite"):
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        engine.dispose()
        missing = set(committed) - stored
        assert not missing, f"round {round_}: committed but gone: {sorted(missing)[:5]}"
        assert lines == 8 * len(stored)  # each transaction is whole: an order never without its lines
    assert len(committed) >= 15 * 5


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"ORDERBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}


def orders_in(url: str) -> set[str]:
    engine = open_ledger(url, migrate=False)
    with engine.connect() as conn:
        found = set(conn.execute(sa.select(t.orders.c.external_id)).scalars())
    engine.dispose()
    return found


def test_online_backup_while_writing_then_restore(tmp_path: Path, sqlite_env: dict[str, str],
                                                   ob: Callable[..., Outcome]) -> None:
    url = sqlite_env["ORDERBRIDGE_DATABASE_URL"]
    open_ledger(url).dispose()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.heavy_writes", url, "B"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert proc.stdout.readline()  # it has committed, and keeps writing during the backup
        made = ob("db", "backup", str(tmp_path / "copy.sqlite"), env=sqlite_env)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    assert made.returncode == 0, made.stderr
    assert f"schema {head_revision()}" in made.stdout  # the newest migration, whichever it is
    copy = sqlite3.connect(tmp_path / "copy.sqlite")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    saved = {r[0] for r in copy.execute("SELECT external_id FROM orders")}
    copy.close()
    assert saved and saved <= orders_in(url)

    again = ob("db", "backup", str(tmp_path / "copy.sqlite"), env=sqlite_env)
    assert again.returncode == 2 and "already exists" in again.stderr

    done = ob("db", "restore", str(tmp_path / "copy.sqlite"), env=sqlite_env)
    assert done.returncode == 0, done.stderr
    assert orders_in(url) == saved  # the orders written after the backup are gone, as asked


def _hold_a_lease(url: str, owner: str) -> None:
    engine = open_ledger(url)
    with engine.begin() as conn:
        merchant = conn.execute(t.merchants.insert().values(name="acme", created_at=utcnow())).inserted_primary_key
        cid = conn.execute(t.connections.insert().values(
            name="shop", merchant_id=merchant[0], type="test_shop", role="source", enabled=True, settings={},
            base_url="", test_mode=True, schedule={}, credentials_enc="", created_at=utcnow(),
            updated_at=utcnow())).inserted_primary_key
        conn.execute(t.job_state.insert().values(connection_id=cid[0], job="download", lease_owner=owner,
                                                 lease_expires_at=utcnow() + timedelta(minutes=5), last_error=""))
    engine.dispose()


def test_restore_refuses_while_a_runner_holds_leases_unless_forced(tmp_path: Path, sqlite_env: dict[str, str],
                                                                    ob: Callable[..., Outcome]) -> None:
    url = sqlite_env["ORDERBRIDGE_DATABASE_URL"]
    open_ledger(url).dispose()
    assert ob("db", "backup", str(tmp_path / "empty.sqlite"), env=sqlite_env).returncode == 0
    _hold_a_lease(url, "another-host:4242:abcd")
    refused = ob("db", "restore", str(tmp_path / "empty.sqlite"), env=sqlite_env)
    assert refused.returncode == 2
    assert "runner is working" in refused.stderr and "another-host:4242" in refused.stderr
    assert "--force" in refused.stderr
    forced = ob("db", "restore", str(tmp_path / "empty.sqlite"), "--force", env=sqlite_env)
    assert forced.returncode == 0, forced.stderr
    engine = open_ledger(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.job_state)).scalar_one() == 0
    engine.dispose()


def test_restore_refuses_damaged_files_and_unknown_schemas(tmp_path: Path, sqlite_env: dict[str, str],
                                                          ob: Callable[..., Outcome]) -> None:
    url = sqlite_env["ORDERBRIDGE_DATABASE_URL"]
    open_ledger(url).dispose()
    good = tmp_path / "good.sqlite"
    assert ob("db", "backup", str(good), env=sqlite_env).returncode == 0

    newer = tmp_path / "newer.sqlite"
    newer.write_bytes(good.read_bytes())
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    out = ob("db", "restore", str(newer), env=sqlite_env)
    assert out.returncode == 2 and "9999_from_the_future" in out.stderr and "unknown" in out.stderr

    damaged = tmp_path / "damaged.sqlite"
    data = bytearray(good.read_bytes())
    data[4096:8192] = os.urandom(4096)  # a page of the orders' tables overwritten
    damaged.write_bytes(bytes(data))
    out = ob("db", "restore", str(damaged), env=sqlite_env)
    assert out.returncode == 2 and "cannot be restored" in out.stderr, out.stderr

    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database")
    out = ob("db", "restore", str(junk), env=sqlite_env)
    assert out.returncode == 2 and "not a SQLite database" in out.stderr


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.mark.postgres
def test_postgresql_backup_and_restore_with_pg_dump(tmp_path: Path, pg_url: str, ob: Callable[..., Outcome]) -> None:
    env = {"ORDERBRIDGE_DATABASE_URL": pg_url}
    heavy_writes.prepare(pg_url)
    committed = write_then_kill(pg_url, "P", 0.3)
    made = ob("db", "backup", str(tmp_path / "ledger.dump"), env=env)
    if made.returncode != 0:  # only where the client tools are missing: then the error says what to do
        assert "pg_dump was not found" in made.stderr and "fix:" in made.stderr
        return
    assert (tmp_path / "ledger.dump").read_bytes()[:5] == b"PGDMP"
    before = orders_in(pg_url)
    assert set(committed) <= before
    engine = open_ledger(pg_url)
    with engine.begin() as conn:
        conn.execute(t.order_events.delete())
        conn.execute(t.order_lines.delete())
        conn.execute(t.deliveries.delete())
        conn.execute(t.orders.delete())
    engine.dispose()
    done = ob("db", "restore", str(tmp_path / "ledger.dump"), env=env)
    assert done.returncode == 0, done.stderr
    assert orders_in(pg_url) == before
