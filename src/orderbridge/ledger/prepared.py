"""Statements the hub runs for nearly every order, built once.

Building a SQLAlchemy statement (``.where(...)``, ``.values(...)``) and computing its cache key
costs more CPU than running it on SQLite; for the few statements run per order and per step,
the statement is built once with bound parameters and only the values change.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

ROW_ID = "row_id"  # the bound parameter naming the row (no table has a column of that name)


@functools.cache
def update_by_id(table: sa.Table) -> sa.Update:
    """``UPDATE table SET <the columns given at execution> WHERE id = :row_id``."""
    return table.update().where(table.c.id == sa.bindparam(ROW_ID))


@functools.cache
def select_by(table: sa.Table, key: str, *columns: str) -> sa.Select[Any]:
    """``SELECT columns FROM table WHERE key = :row_id``."""
    return sa.select(*(table.c[c] for c in columns)).where(table.c[key] == sa.bindparam(ROW_ID))
