"""A throw-away PostgreSQL database (for test runs and benchmarks): created empty, dropped after."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

from orderbridge.ledger.db import _normalise


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "ob_scratch", keep: bool = False) -> Iterator[str]:
    """Yield the URL of a new database on the server ``server_url`` points at (any database there);
    it is dropped, with its connections, on exit unless ``keep``. The URL's user needs CREATEDB.
    Raises sqlalchemy's OperationalError when the server cannot be reached."""
    url = sa.make_url(_normalise(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            if not keep:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
