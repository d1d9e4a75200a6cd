"""CPU the PostgreSQL server spends on a run's ledger.

On the bench's machine the server shares the cores with the hub, the sandboxes and the warehouse,
so its work is part of what a PostgreSQL run costs. It is read from ``/proc`` for the server
processes serving the run's database (its backends, and autovacuum workers while they clean it),
found in ``pg_stat_activity``: each second, since a backend that ends takes its figures with it
(at most a second of a closing connection's work goes unseen). Server-wide processes (WAL writer,
checkpointer) are left out. Only where the server runs on this machine: for a remote server, or
without ``/proc``, there is no figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from benchmarks.metrics import process_cpu_seconds
from orderbridge.ledger.db import _normalise

log = logging.getLogger("orderbridge.bench")

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The server processes of the other sessions on the database the connection is on.
OTHER_SESSIONS = sa.text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
SAMPLE_SECONDS = 1.0


def _is_server_process(pid: int) -> bool:
    """The pid is a PostgreSQL process here (not another process that a server in a container, in
    its own pid namespace, would have given the same number)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres")
    except OSError:
        return False


class ServerCpu:
    """Follows the server processes of one database; ``seconds`` is the CPU they used since ``start``."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = sa.create_engine(_normalise(url), poolclass=NullPool)
        self._conn: Connection | None = None
        self._first: dict[int, float] = {}  # pid -> CPU when first seen (0 for those born since start)
        self._last: dict[int, float] = {}
        self._started = False
        # One sample at a time: the last one, taken at the run's end, may meet the follower's, whose
        # thread goes on after its task is cancelled; the connection is not to be shared meanwhile.
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def of(cls, url: str) -> ServerCpu | None:
        """A follower for a PostgreSQL ledger on this machine, else None."""
        parsed = sa.make_url(_normalise(url))
        if parsed.get_backend_name() != "postgresql" or not Path("/proc/self/stat").exists():
            return None
        socket_dir = str(parsed.query.get("host", ""))
        if (parsed.host or "localhost") not in LOCAL_HOSTS and not socket_dir.startswith("/"):
            return None
        return cls(url)

    def _pids(self) -> list[int]:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return [int(p) for p in self._conn.execute(OTHER_SESSIONS).scalars()]

    def sample(self) -> None:
        with self._lock:
            if not self._closed:
                self._sample()

    def _sample(self) -> None:
        for pid in self._pids():
            used = process_cpu_seconds(pid)
            if used is None:
                continue
            if pid not in self._first:
                if not _is_server_process(pid):
                    continue
                self._first[pid] = used if not self._started else 0.0
            self._last[pid] = used

    def start(self) -> None:
        self.sample()
        self._started = True

    async def follow(self) -> None:
        """Sample every second until cancelled; a failed sample is logged and the next one tried."""
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            try:
                await asyncio.to_thread(self.sample)
            except sa.exc.SQLAlchemyError as exc:
                log.debug("server CPU sample failed: %s", exc)

    def seconds(self) -> float | None:
        """CPU used since ``start`` (None when no server process of the database could be read)."""
        if not self._last:
            return None
        return sum(self._last[pid] - self._first[pid] for pid in self._last)

    def close(self) -> None:
        with self._lock, contextlib.suppress(sa.exc.SQLAlchemyError):
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._engine.dispose()
