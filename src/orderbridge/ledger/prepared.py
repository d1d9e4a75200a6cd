"""Statements the hub runs for nearly every order, built once, and run with little overhead.

Building a SQLAlchemy statement (``.where(...)``, ``.values(...)``) and computing its cache key
costs more CPU than running it on SQLite; for the few statements run per order and per step,
the statement is built once with bound parameters and only the values change.

Running one through ``Connection.execute`` still costs about 25 µs of Python per statement (cache
key, parameter dictionary, execution context, result metadata), several times what SQLite takes
for these one-row statements; at about 25 of them per order that was a third of the hub's CPU.
``execute`` takes those statements straight to the driver: each is compiled once by SQLAlchemy for
the connection's database (its SQL, its parameters in order, its types' bind and result
processors) and then executed on a cursor of the same connection, in the same transaction, its
errors raised as SQLAlchemy raises them. What it does not handle (IN lists rendered at execution,
column defaults to fill in, an INSERT's RETURNING), and every statement of an engine whose
statements are watched (``before_cursor_execute`` listeners: tracing, say), goes through
``Connection.execute``.
"""

from __future__ import annotations

import collections
import functools
import keyword
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

ROW_ID = "row_id"  # the bound parameter naming the row (no table has a column of that name)

Processor = Callable[[Any], Any] | None


@functools.cache
def update_by_id(table: sa.Table) -> sa.Update:
    """``UPDATE table SET <the columns given at execution> WHERE id = :row_id``."""
    return table.update().where(table.c.id == sa.bindparam(ROW_ID))


@functools.cache
def insert_into(table: sa.Table) -> sa.Insert:
    """``INSERT INTO table (<the columns given at execution>)``."""
    return table.insert()


@functools.cache
def select_by(table: sa.Table, key: str, *columns: str) -> sa.Select[Any]:
    """``SELECT columns FROM table WHERE key = :row_id``."""
    return sa.select(*(table.c[c] for c in columns)).where(table.c[key] == sa.bindparam(ROW_ID))


class _Param(NamedTuple):
    key: str  # the bind's key (what callers name it by)
    name: str  # the compiled name, also accepted as SQLAlchemy does
    default: Any  # the value built into the statement, or _REQUIRED
    process: Processor


class _Plan:
    """A statement compiled once for one database: its SQL, parameters and rows."""

    __slots__ = ("columns", "params", "positional", "results", "row", "sql")

    def __init__(self, sql: str, params: tuple[_Param, ...], positional: bool, row: type[Any] | None,
                 columns: list[Any]) -> None:
        self.sql, self.params, self.positional, self.row, self.columns = sql, params, positional, row, columns
        # The columns' result processors, made from the driver's column types at the first rows
        # (as SQLAlchemy makes them: on PostgreSQL some depend on the type the server sent).
        self.results: tuple[Processor, ...] | None = None


_REQUIRED = object()


def _row_class(keys: Sequence[str]) -> type[Any]:
    """Rows read by position, by attribute and through ``_mapping``, as SQLAlchemy's rows are."""
    base = collections.namedtuple("Row", keys)  # type: ignore[misc]

    class Row(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return self._asdict()

    return Row


class FastResult:
    """What callers read of a statement's outcome: its rows (fetched at once) and rowcount."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount = rowcount
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if not self._rows:
            raise sa.exc.NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise sa.exc.MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> FastResult:
        return FastResult(self.rowcount, [r[0] for r in self._rows])


_plans: dict[tuple[int, int, tuple[str, ...]], tuple[sa.Executable, Any, _Plan | None]] = {}
_PLANS_HELD = 1000  # statements are meant to be built once; a caller building them anew is not a leak


def _plan(conn: Connection, stmt: sa.Executable, keys: tuple[str, ...]) -> _Plan | None:
    """The statement compiled for this connection's database with these parameter names; None
    when ``execute`` must leave it to ``Connection.execute``."""
    dialect = conn.dialect
    compiled: Any = stmt.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    if compiled.escaped_bind_names or compiled.insert_prefetch or compiled.update_prefetch:
        return None
    if compiled.positional and compiled.positiontup is None:
        return None
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    params = []
    for name in compiled.positiontup if compiled.positional else by_name:
        bind: BindParameter[Any] = by_name[name]
        if bind.expanding or bind.literal_execute or bind.callable is not None:
            return None
        default = _REQUIRED if bind.required else bind.value
        params.append(_Param(bind.key, name, default, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    row: type[Any] | None = None
    if isinstance(stmt, sa.Select):
        columns = list(stmt.selected_columns)
    elif isinstance(stmt, sa.Update | sa.Delete | sa.Insert):
        columns = list(stmt.exported_columns)  # its RETURNING columns
        if columns and isinstance(stmt, sa.Insert):
            return None  # SQLAlchemy reads inserted keys its own way
    else:
        return None
    if columns:
        names = [str(c.key) for c in columns]
        if len(set(names)) != len(names) or not all(
                n.isidentifier() and not n.startswith("_") and not keyword.iskeyword(n) for n in names):
            return None  # rows keyed as SQLAlchemy would dedupe them: leave those to it
        row = _row_class(names)
    return _Plan(compiled.string, tuple(params), bool(compiled.positional), row, columns)


def _values(plan: _Plan, given: Mapping[str, Any]) -> list[Any] | dict[str, Any] | None:
    out = []
    for key, name, default, process in plan.params:
        value = given.get(key, _REQUIRED)
        if value is _REQUIRED:
            value = given.get(name, default)  # by its compiled name, else the value built in
            if value is _REQUIRED:
                return None  # Connection.execute says which value is missing
        out.append(value if process is None else process(value))
    return out if plan.positional else {p.name: v for p, v in zip(plan.params, out, strict=True)}


def execute(conn: Connection, stmt: sa.Executable,
            params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Any:
    """``conn.execute(stmt, params)`` for a statement built once (see the module's docstring):
    the same SQL, parameters, transaction and errors, read as a ``FastResult``. A list of
    parameter sets runs the statement for each (executemany), as ``Connection.execute`` does."""
    many = isinstance(params, list)
    sets: Sequence[Mapping[str, Any]] = params if isinstance(params, list) else [cast(Mapping[str, Any], params or {})]
    plan = _plan_for(conn, stmt, tuple(sets[0])) if sets else None
    values = _all_values(plan, sets, many) if plan is not None else None
    if plan is None or values is None:
        return conn.execute(stmt, [dict(p) for p in sets] if many else dict(sets[0]))
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's autobegin would (on SQLite the dialect's do_begin sends BEGIN IMMEDIATE)
    dialect = conn.dialect
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        if many:
            cursor.executemany(plan.sql, values)
        else:
            cursor.execute(plan.sql, values[0])
        fetched = cursor.fetchall() if plan.row is not None else []
        rowcount = cursor.rowcount
        # Read once per plan: psycopg builds the description's column objects anew at each read.
        description = cursor.description if plan.row is not None and plan.results is None else None
    except dialect.loaded_dbapi.Error as exc:
        # As SQLAlchemy does: a lost connection is invalidated (the pool drops it), and the
        # driver's error is raised as SQLAlchemy's (IntegrityError, OperationalError, ...).
        invalidated = bool(dialect.is_disconnect(exc, dbapi_conn, cursor))
        if invalidated:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(plan.sql, values if many else values[0], exc, dialect.loaded_dbapi.Error,
                                         connection_invalidated=invalidated, dialect=dialect) from exc
    finally:
        cursor.close()
    rows: list[Any] = []
    if plan.row is not None:
        processors = plan.results
        if processors is None:
            coltypes = [d[1] for d in description] if description else [None] * len(plan.columns)
            processors = plan.results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, coltype)
                                              for c, coltype in zip(plan.columns, coltypes, strict=True))
        make = plan.row._make
        if any(processors):
            rows = [make([v if f is None else f(v) for f, v in zip(processors, r, strict=True)]) for r in fetched]
        else:
            rows = [make(r) for r in fetched]
    return FastResult(rowcount, rows)


def _plan_for(conn: Connection, stmt: sa.Executable, keys: tuple[str, ...]) -> _Plan | None:
    if conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute:
        return None  # someone watches each statement (tracing, say): SQLAlchemy's way tells them
    cache_key = (id(stmt), id(conn.dialect), keys)
    held = _plans.get(cache_key)
    if held is None or held[0] is not stmt or held[1] is not conn.dialect:  # ids of objects held here
        if len(_plans) >= _PLANS_HELD:
            _plans.clear()
        held = (stmt, conn.dialect, _plan(conn, stmt, keys))
        _plans[cache_key] = held
    return held[2]


def _all_values(plan: _Plan, sets: Sequence[Mapping[str, Any]], many: bool) -> list[Any] | None:
    if many and (plan.row is not None or any(p.keys() != sets[0].keys() for p in sets)):
        return None  # rows from an executemany, or sets naming different columns: SQLAlchemy's way
    out = []
    for given in sets:
        values = _values(plan, given)
        if values is None:
            return None
        out.append(values)
    return out
