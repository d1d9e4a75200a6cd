"""One external call made for a step, with the engine's answer to each kind of failure."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from orderbridge.connectors.errors import AuthError, ConfigError, ConnectorError, DataError
from orderbridge.domain.models import utcnow
from orderbridge.engine import steps
from orderbridge.engine.context import JobContext
from orderbridge.engine.orders import set_error
from orderbridge.engine.timeline import alert, event
from orderbridge.logs import redact

log = logging.getLogger("orderbridge.engine")

T = TypeVar("T")
_FAILED: Any = object()


def failed(value: Any) -> bool:
    return value is _FAILED


async def attempt(
    ctx: JobContext, table: sa.Table, row: Any, what: str, call: Callable[[], Awaitable[T]],
    *, on_data: Callable[[Any, DataError], None] | None = None,
) -> T | Any:
    """Run ``call`` for a claimed step. On failure the step is rescheduled (transient), put in
    error with the order (data: ``on_data`` or the default message), or put back for later
    while the job stops (auth/config); the sentinel checked by ``failed()`` is returned."""
    try:
        async with ctx.call_slots:
            return await call()
    except DataError as exc:
        with ctx.tx() as conn:
            steps.fail_data(conn, table, row.id, exc.message)
            if on_data:
                on_data(conn, exc)
            else:
                set_error(conn, row.order_id, exc.code, f"{what}: {exc.message}", exc.fix)
        return _FAILED
    except (AuthError, ConfigError) as exc:
        with ctx.tx() as conn:  # the connection's problem, not the order's: try again later
            conn.execute(table.update().where(table.c.id == row.id).values(
                state=steps.PENDING, last_error=redact(str(exc)), next_attempt_at=utcnow() + timedelta(seconds=60)))
        raise
    except Exception as exc:
        if not isinstance(exc, ConnectorError):
            log.exception("unexpected failure: %s (order %s)", what, row.order_id)
        transient(ctx, table, row, exc, what)
        return _FAILED


def transient(ctx: JobContext, table: sa.Table, row: Any, exc: Exception, what: str) -> None:
    with ctx.tx() as conn:
        fresh = conn.execute(sa.select(table).where(table.c.id == row.id)).one()
        parked = steps.fail_transient(conn, table, fresh, exc, ctx.hub.runner)
        event(conn, row.order_id, "parked" if parked else "retry",
              f"{what} failed ({exc}); " + ("gave up retrying: parked" if parked else "will retry"))
        if parked:
            alert(conn, kind="parked", key=f"parked:{table.name}:{row.id}", connection_id=ctx.row.id,
                  order_id=row.order_id, message=f"{what} kept failing and was parked: {exc}",
                  fix="check the connection, then retry the order")
