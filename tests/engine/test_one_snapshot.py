"""A page read in several queries sees the ledger as of one moment on PostgreSQL (ledger/db.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from orderbridge.ledger.db import one_snapshot, open_ledger
from tests.conftest import _pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.mark.postgres
def test_a_commit_made_while_a_page_is_read_is_not_half_seen(pg_url: str) -> None:
    db = open_ledger(pg_url)
    try:
        m = sa.table("merchants", sa.column("id"), sa.column("name"))
        with db.begin() as conn:
            conn.execute(sa.text("INSERT INTO merchants (name, created_at) VALUES ('before', now())"))
        with one_snapshot(db) as page:
            assert page.execute(sa.select(m.c.name)).scalars().all() == ["before"]
            with db.begin() as other:  # committed between two of the page's queries
                other.execute(sa.update(m).values(name="after"))
            assert page.execute(sa.select(m.c.name)).scalars().all() == ["before"]
        with one_snapshot(db) as page:
            assert page.execute(sa.select(m.c.name)).scalars().all() == ["after"]
    finally:
        db.dispose()
