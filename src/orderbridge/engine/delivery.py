"""Source workflow steps (e.g. Houzz Process, Charge) and order delivery to the backend."""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from orderbridge.config import RouteOptions
from orderbridge.connectors.base import StoredOrder
from orderbridge.connectors.errors import DataError
from orderbridge.connectors.registry import parse_model
from orderbridge.domain.models import OrderStatus, utcnow
from orderbridge.domain.validation import describe_validation_error
from orderbridge.engine import inventory, steps
from orderbridge.engine.attempt import attempt, failed
from orderbridge.engine.context import JobContext
from orderbridge.engine.hub import RouteRow
from orderbridge.engine.orders import WAITING_FOR_PAYMENT, clear_error, recompute_status, set_error
from orderbridge.engine.rules import MappingRules, delivery_request, order_by_id, stored_order
from orderbridge.engine.timeline import event
from orderbridge.ledger import prepared
from orderbridge.ledger import schema as t
from orderbridge.ledger.prepared import ROW_ID

log = logging.getLogger("orderbridge.engine.delivery")

BATCH = 500


# ------------------------------------------------------------------------------ workflow


async def workflow(ctx: JobContext) -> None:
    src = ctx.hub.source(ctx.row)
    w = t.workflow_steps

    def due(conn: Any) -> list[Any]:
        # We hold this connection's workflow lease, so an in_flight step here is a dead run's:
        # it is due again, and every step looks at the source's state before acting.
        released = steps.release(conn, w, ctx.row.id)
        if released:
            ctx.notes.append(f"{released} interrupted workflow steps resumed")
        return prepared.execute(conn, _due_steps(), {steps.SOURCE_ID: ctx.row.id, steps.NOW: utcnow()}).all()

    rows = await ctx.hub.in_ledger(due)

    def next_step(order_steps: list[_Step]) -> _Step | None:
        # The order's next step, when it is due now: an order goes through its steps one after
        # the other in one go, rather than each step waiting for every other order's.
        for step in order_steps:
            if step.sending_canceled:
                return None
            if step.state == steps.DONE:
                continue
            due = step.state == steps.PENDING and (step.next_attempt_at is None or step.next_attempt_at <= utcnow())
            return step if due else None
        return None

    async def run(first: Any) -> None:
        row: Any = first
        held: tuple[StoredOrder | None, list[_Step]] | None = None
        while row is not None:
            row, held = await run_one(row, held)

    async def run_one(row: Any, held: tuple[StoredOrder | None, list[_Step]] | None
                      ) -> tuple[Any, tuple[StoredOrder | None, list[_Step]] | None]:
        """Run one step; the order's next step, claimed, if due now, with the order and its steps
        as read for the first (its steps run one after the other within moments). A step handed on
        this way was claimed in the transaction that recorded the previous one done.

        The steps are read once, with the order: only this job (holding the connection's workflow
        lease) records a step done, and what others do meanwhile (a cancellation, a retry asked
        for) is guarded by the conditional claims and release below."""
        def claim(conn: Any) -> Any:
            if not steps.claim(conn, w, row.id):
                return None
            order_row = prepared.execute(conn, order_by_id(), {ROW_ID: row.order_id}).one()
            order_steps = prepared.execute(conn, _steps_of_order(), {ROW_ID: row.order_id})
            return order_row, [_Step(**s._mapping) for s in order_steps]

        if held is None:
            claimed = await ctx.write(claim)
            if claimed is None:
                return None, None
            order_row, order_steps = claimed
            order = None
        else:
            order_row, (order, order_steps) = None, held

        async def step() -> str:
            nonlocal order
            order = order or stored_order(order_row)
            return await src.run_workflow_step(row.name, order, retry=row.attempts > 0)

        note = await attempt(ctx, w, row, row.label, step)
        if failed(note):
            return None, None
        after = [dataclasses.replace(s, state=steps.DONE) if s.id == row.id else s for s in order_steps]

        def done(conn: Any) -> Any:
            steps.succeed(conn, w, row.id)
            event(conn, row.order_id, "workflow", f"{row.label}: done" + (f" ({note})" if note else ""))
            # The delivery waits for the steps that block it: released when the last of them is
            # done (a step after them leaves it as it is).
            blocked = any(s.blocks_delivery and s.state != steps.DONE for s in after)
            if not blocked and any(s.id == row.id and s.blocks_delivery for s in after):
                backend_id = prepared.execute(conn, _release_delivery(), {ROW_ID: row.order_id}).scalar()
                if backend_id is not None:
                    ctx.hub.wake(conn, int(backend_id), "deliver")
            # No status to recompute: a workflow step changes none of what the status derives
            # from (a delivery it releases goes from waiting to pending: "new" either way).
            following = next_step(after)
            if following is None or not steps.claim(conn, w, following.id):
                return None
            return following  # its intent committed with this step's result

        following = await ctx.write(done)
        ctx.count()
        return following, (order, after)

    await ctx.each(rows, run)


@functools.cache
def _due_deliveries() -> Any:
    """A backend's due deliveries (the bound connection is the backend), with their orders' flags."""
    d, o = t.deliveries, t.orders
    return (sa.select(d.c.id, d.c.order_id, d.c.attempts, d.c.idempotency_key, o.c.connection_id,
                      o.c.sending_canceled, o.c.on_hold, o.c.error_code)
            .join(o, o.c.id == d.c.order_id)
            .where(d.c.backend_id == sa.bindparam(steps.SOURCE_ID), steps.due_clause(d, sa.bindparam(steps.NOW)))
            .order_by(*steps.due_order(d)).limit(BATCH))


@functools.cache
def _due_steps() -> Any:
    """A source's due workflow steps, each only once the order's earlier steps are done."""
    w, o = t.workflow_steps, t.orders
    earlier = sa.alias(w)
    blocked_by_earlier = sa.exists().where(
        earlier.c.order_id == w.c.order_id, earlier.c.seq < w.c.seq, earlier.c.state != steps.DONE)
    return (sa.select(w.c.id, w.c.order_id, w.c.name, w.c.label, w.c.attempts)
            .join(o, o.c.id == w.c.order_id)
            .where(o.c.connection_id == sa.bindparam(steps.SOURCE_ID), steps.due_clause(w, sa.bindparam(steps.NOW)),
                   ~blocked_by_earlier, o.c.sending_canceled.is_(False))
            .order_by(*steps.due_order(w)).limit(BATCH))


@dataclass(frozen=True)
class _Step:
    """An order's workflow step as the workflow run holds it (``_steps_of_order``'s columns)."""

    id: int
    order_id: int
    name: str
    label: str
    attempts: int
    state: str
    next_attempt_at: datetime | None
    blocks_delivery: bool
    sending_canceled: bool


@functools.cache
def _steps_of_order() -> Any:
    """An order's workflow steps in order, each with whether the order's sending was cancelled."""
    w, o = t.workflow_steps, t.orders
    return (sa.select(w.c.id, w.c.order_id, w.c.name, w.c.label, w.c.attempts, w.c.state, w.c.next_attempt_at,
                      w.c.blocks_delivery, o.c.sending_canceled)
            .join(o, o.c.id == w.c.order_id).where(w.c.order_id == sa.bindparam(ROW_ID)).order_by(w.c.seq))


@functools.cache
def _release_delivery() -> Any:
    """The order's delivery, held for its source workflow, made due; returns its backend's id."""
    d = t.deliveries
    return (d.update().where(d.c.order_id == sa.bindparam(ROW_ID), d.c.state == steps.WAITING,
                             d.c.last_error == "waiting for source workflow")
            .values(state=steps.PENDING, last_error="").returning(d.c.backend_id))


# ------------------------------------------------------------------------------ delivery


async def deliver(ctx: JobContext) -> None:
    """Create due orders in this backend, exactly once."""
    backend = ctx.hub.backend(ctx.row)
    d = t.deliveries

    def start(conn: Any) -> tuple[dict[int, Any], dict[int, Any]]:
        # We hold this backend's deliver lease, so an in_flight row here is a dead run's: its
        # next attempt looks the order up before creating anything.
        released = steps.release(conn, d, ctx.row.id, by="backend_id")
        if released:
            ctx.notes.append(f"{released} interrupted deliveries resumed")
        routes = {r.source_id: r for r in ctx.hub.routes_to_backend(conn, ctx.row.id)}
        return routes, {sid: ctx.hub.connection(conn, sid) for sid in routes}

    def options(route: RouteRow) -> _RouteOptions:
        # Parsed once per run, not per order (a route's options change between runs, not within).
        return _RouteOptions(parse_model(RouteOptions, route.options, "route options"),
                             ctx.hub.route_options_for(backend, route))

    def due(conn: Any) -> list[Any]:
        return prepared.execute(conn, _due_deliveries(), {steps.SOURCE_ID: ctx.row.id, steps.NOW: utcnow()}).all()

    route_rows, sources = await ctx.hub.in_ledger(start)
    routes = {sid: options(route) for sid, route in route_rows.items()}
    while True:
        rows = await ctx.hub.in_ledger(due)
        if not rows:
            if ctx.processed:  # the backend's stock moved by what was created: listings follow soon
                await ctx.hub.in_ledger(functools.partial(inventory.settle, ctx.hub, backend=ctx.row))
            return
        before = ctx.processed
        rules = MappingRules()
        await ctx.each(rows, functools.partial(_deliver_one, ctx, backend, routes, sources, rules), widen=True)
        if ctx.processed == before:
            return  # nothing moved (all failed or held): leave the rest for the next run


@dataclass
class _RouteOptions:
    """A route's options, parsed once for a delivery run."""

    options: RouteOptions
    backend_options: Any


async def _deliver_one(ctx: JobContext, backend: Any, routes: dict[int, _RouteOptions], sources: dict[int, Any],
                       rules: MappingRules, row: Any) -> None:
    d = t.deliveries
    if row.sending_canceled:
        with ctx.tx() as conn:
            conn.execute(d.update().where(d.c.id == row.id).values(state=steps.CANCELED))
        return
    if row.on_hold:
        with ctx.tx() as conn:
            conn.execute(d.update().where(d.c.id == row.id).values(state=steps.WAITING, last_error="on hold"))
        return
    route = routes.get(row.connection_id)
    source = sources.get(row.connection_id)
    if route is None or source is None:
        return
    def prepare(conn: Any) -> Any:
        """The request to send, with the intent committed; None when it must not be sent now."""
        order_row = prepared.execute(conn, order_by_id(), {ROW_ID: row.order_id}).one()
        try:
            request = delivery_request(
                conn, merchant_id=source.merchant_id, order_row=order_row, route_options=route.options,
                backend_options=route.backend_options, source_name=source.name, backend_name=ctx.row.name,
                rules=rules)
        except DataError as exc:
            steps.fail_data(conn, d, row.id, exc.message)
            set_error(conn, row.order_id, exc.code, exc.message, exc.fix)
            return None
        except ValidationError as exc:
            msg = describe_validation_error(exc, order_row.cust_po_no)
            steps.fail_data(conn, d, row.id, msg)
            set_error(conn, row.order_id, "invalid_order", msg, "correct the order at the source, then re-pull it")
            return None
        if backend.requires_payment(request) and not order_row.paid:
            conn.execute(d.update().where(d.c.id == row.id).values(
                state=steps.WAITING, last_error=WAITING_FOR_PAYMENT))
            event(conn, row.order_id, "waiting", "Waiting for payment before it is sent to " + ctx.row.name)
            return None
        if not steps.claim(conn, d, row.id):  # the intent, committed before the call
            return None
        return request

    request = await ctx.write(prepare)
    if request is None:
        return

    async def send() -> tuple[str, str]:
        if row.attempts > 0 and backend.capabilities.lookup_by_reference:
            # An earlier attempt may have reached the backend: look before creating again.
            found = await backend.find_order(request)
            if found is not None:
                return found, "found at the backend after an interrupted attempt"
        return await backend.create_order(request, row.idempotency_key), "created"

    def data_error(conn: Any, exc: DataError) -> None:
        set_error(conn, row.order_id, exc.code, exc.message, exc.fix)

    sent = await attempt(ctx, d, row, f"Delivery to {ctx.row.name}", send, on_data=data_error)
    if failed(sent):
        return
    backend_id, how = sent

    note = backend.take_delivery_note(request.cust_ref)  # taken once: ``done`` may run twice

    def done(conn: Any) -> None:
        steps.succeed(conn, d, row.id, backend_order_id=str(backend_id))
        if row.error_code:  # read with the due rows: the error of an earlier attempt of this delivery
            clear_error(conn, row.order_id)
        event(conn, row.order_id, "delivered",
              f"Order {how} in {ctx.row.name} as {request.cust_ref} (id {backend_id})" + (f": {note}" if note else ""))
        recompute_status(conn, row.order_id, likely=OrderStatus.AT_WMS)

    await ctx.write(done)
    ctx.count()
