"""A fresh ledger for each run: a SQLite file in the run's directory, or a new PostgreSQL database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from orderbridge.connectors.errors import ConfigError
from orderbridge.ledger.db import _normalise
from orderbridge.ledger.scratch import scratch_database


@contextlib.contextmanager
def fresh_ledger(database_url: str | None, workdir: Path, label: str, keep: bool = False) -> Iterator[str]:
    """Yield the URL of an empty ledger; a PostgreSQL database made for the run is dropped after it."""
    if not database_url or database_url.startswith("sqlite"):
        yield f"sqlite:///{workdir / f'{label}.sqlite'}"
        return
    url = sa.make_url(_normalise(database_url))
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"the benchmark runs on SQLite or PostgreSQL, not {url.get_backend_name()!r}",
                          fix="give a postgresql://USER@HOST:PORT/DB URL, or none for SQLite")
    stack = contextlib.ExitStack()
    try:  # only the creation's failure is the URL's fault; the run's own errors pass through unchanged
        fresh = stack.enter_context(scratch_database(database_url, f"ob_bench_{label}", keep=keep))
    except sa.exc.OperationalError as exc:
        raise ConfigError(f"cannot create a database for the benchmark at {url.render_as_string()}: {exc.orig}",
                          fix="the URL's user needs CREATEDB (the bench makes a fresh database per run "
                              "and drops it afterwards)") from None
    with stack:
        yield fresh
