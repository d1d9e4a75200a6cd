"""Order download (polling with a UTC cursor and overlap), webhooks and re-pulls."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from orderbridge.connectors.base import DownloadedOrder, DownloadItem, SkippedOrder, SourceConnector, Window
from orderbridge.connectors.stored_reads import ReadEntry
from orderbridge.domain.models import Order, utcnow
from orderbridge.domain.validation import (
    MAX_ID_LENGTH,
    describe_oversized,
    describe_validation_error,
    oversized_fields,
    storable_text,
)
from orderbridge.engine.context import JobContext, LookBack, read_cursor, write_cursor
from orderbridge.engine.deadlocks import own_transaction
from orderbridge.engine.hub import ConnectionRow, Hub
from orderbridge.engine.orders import (
    delivery_facts,
    ingest,
    ingest_new,
    order_json,
    stored_columns,
    update_stored,
)
from orderbridge.engine.timeline import alert
from orderbridge.ledger import schema as t

log = logging.getLogger("orderbridge.engine.intake")

BATCH = 200
DIGEST_BATCH = 1000  # entries read unmapped, looked up in the ledger at once (a source's page)
MAX_RAW_BYTES = 1_000_000  # a source's payload kept beside an order refused for its size


def _workflow(src: SourceConnector, item: DownloadItem) -> list[Any]:
    if isinstance(item, DownloadedOrder) and item.order is not None:
        return src.workflow_steps(item.order)
    return []


def store_items(hub: Hub, row: ConnectionRow, read: list[DownloadItem | ReadEntry], via: str) -> dict[str, int]:
    """Ingest a batch in one transaction (entries read unmapped are mapped first). New orders are
    stored together; should that fail, and for every other item, each item is stored in its own
    savepoint: one bad item never takes the others down. A transaction the server aborts to break
    a deadlock is run again (engine/deadlocks.py)."""
    items = [e.item() if isinstance(e, ReadEntry) else e for e in read]

    return own_transaction(hub.db, lambda conn: _store_in(conn, hub, row, items, via))


def _store_in(conn: Any, hub: Hub, row: ConnectionRow, items: list[DownloadItem], via: str) -> dict[str, int]:
    src = hub.source(row)
    tally: dict[str, int] = {}
    stored: list[DownloadedOrder] = []
    route = hub.route_for_source(conn, row.id)
    known = _known(conn, row.id, [i.external_id for i in items if _usable_id(i.external_id)])
    fresh: dict[str, tuple[DownloadedOrder, list[Any]]] = {}
    changed: dict[str, DownloadedOrder] = {}  # stored, valid, read again with changes
    rest: list[DownloadItem] = []
    for item in items:
        if not _usable_id(item.external_id):
            _refuse_id(conn, row, item)
            tally["refused"] = tally.get("refused", 0) + 1
            continue
        item = _within_limits(_storable(item))
        if _unchanged(known.get(item.external_id), item):
            # Re-read within the overlap window and not changed: nothing to write (the common case).
            _count(tally, stored, item, "same")
        elif (isinstance(item, DownloadedOrder) and item.order is not None
              and item.external_id not in known and item.external_id not in fresh):
            fresh[item.external_id] = (item, _workflow(src, item))
        elif (isinstance(item, DownloadedOrder) and item.order is not None and item.external_id in known
              and known[item.external_id].error_code != "invalid_order" and item.external_id not in changed):
            changed[item.external_id] = item
        else:
            rest.append(item)  # the rest, and a second copy of an order in the batch, after the first
    with_workflow = False
    try:
        if fresh:
            with conn.begin_nested():
                ingest_new(conn, row, route, list(fresh.values()), via=via)
    except Exception:
        log.debug("storing %d new orders of %s together failed; one by one", len(fresh), row.name, exc_info=True)
        rest[:0] = [item for item, _ in fresh.values()]
    else:
        for item, planned in fresh.values():
            _count(tally, stored, item, "new")
            with_workflow = with_workflow or bool(planned)
    outcomes: list[tuple[DownloadedOrder, str]] = []
    digested: set[str] = set()  # orders whose digest went in with their update
    try:
        if changed:
            with conn.begin_nested():
                facts = delivery_facts(conn, [int(known[i].id) for i in changed])
                # In id order, as every transaction that locks several orders (fewer deadlocks).
                outcomes = [(item, update_stored(conn, known[i], item, item.order, facts=facts, digested=digested))
                            for i, item in sorted(changed.items(), key=lambda kv: int(known[kv[0]].id))
                            if item.order is not None]
    except Exception:
        log.debug("storing %d changed orders of %s together failed; one by one", len(changed), row.name,
                  exc_info=True)
        rest[:0] = list(changed.values())
        digested.clear()  # rolled back with the updates
    else:
        for item, outcome in outcomes:
            _count(tally, stored, item, outcome)
    for item in rest:
        planned = _workflow(src, item)
        try:
            with conn.begin_nested():
                outcome = ingest(conn, row, route, item, planned, via=via)
        except IntegrityError:
            outcome = "raced"  # a concurrent intake (webhook and poll) stored it first
        except Exception:
            log.exception("cannot store order %s of %s", item.external_id, row.name)
            outcome = "failed"
        with_workflow = with_workflow or (bool(planned) and outcome in {"new", "updated"})
        _count(tally, stored, item, outcome)
    _store_digests(conn, row.id, known, [i for i in stored if i.external_id not in digested])
    if route is not None and (tally.get("new") or tally.get("updated")):
        # Committed with the orders: they move now, not at the next scheduled run.
        hub.wake(conn, route.backend_id, "deliver")
        if with_workflow:
            hub.wake(conn, row.id, "workflow")
    return tally


def not_held(conn: Any, connection_id: int, entries: list[ReadEntry]) -> list[ReadEntry]:
    """The entries whose order the ledger does not hold exactly as read (its stored digest is
    another, or it has none): one read by the orders' unique key for the lot."""
    ids = {e.external_id for e in entries if _usable_id(e.external_id)}
    if not ids:
        return entries
    o = t.orders
    held = dict(conn.execute(sa.select(o.c.external_id, o.c.raw_digest).where(
        o.c.connection_id == connection_id, o.c.external_id.in_(ids), o.c.raw_digest.is_not(None))).all())
    return [e for e in entries if held.get(e.external_id) != e.raw_digest]


def _store_digests(conn: Any, connection_id: int, known: dict[str, Any], stored: list[DownloadedOrder]) -> None:
    """Store the digest of each order stored (or found the same) as read, where the ledger holds
    another one: the next poll passes over it while it reads the same. New orders got theirs
    when they were inserted."""
    changed = {i.external_id: i.raw_digest for i in stored
               if i.raw_digest and i.external_id in known and known[i.external_id].raw_digest != i.raw_digest}
    if changed:
        conn.execute(_set_digest(), [{"b_connection": connection_id, "b_external": external_id, "b_digest": value}
                                     for external_id, value in sorted(changed.items(),
                                                                      key=lambda kv: int(known[kv[0]].id))])


@functools.cache
def _set_digest() -> Any:
    o = t.orders
    return (o.update().where(o.c.connection_id == sa.bindparam("b_connection"),
                             o.c.external_id == sa.bindparam("b_external"))
            .values(raw_digest=sa.bindparam("b_digest")))


def _count(tally: dict[str, int], stored: list[DownloadedOrder], item: DownloadItem, outcome: str) -> None:
    tally_as = "same" if outcome == "raced" else outcome
    tally[tally_as] = tally.get(tally_as, 0) + 1
    if outcome in {"new", "updated", "same"} and isinstance(item, DownloadedOrder) and item.raw_digest:
        stored.append(item)


def _usable_id(external_id: str) -> bool:
    """An id the ledger can key on: 1 to 200 characters, no NUL, no lone surrogate."""
    return bool(external_id) and len(external_id) <= MAX_ID_LENGTH and storable_text(external_id) == external_id


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _storable(item: DownloadItem) -> DownloadItem:
    """The item as text columns take it: PostgreSQL refuses NUL (and no database takes a lone
    surrogate), so an order carrying one could not be stored at all. The raw payload is JSON and
    keeps them escaped."""
    if isinstance(item, SkippedOrder):
        reason, status = storable_text(item.reason), storable_text(item.source_status)
        if (reason, status) != (item.reason, item.source_status):
            item = dataclasses.replace(item, reason=reason, source_status=status)
        return item
    error, fix, status = storable_text(item.error), storable_text(item.fix), storable_text(item.source_status)
    if (error, fix, status) != (item.error, item.fix, item.source_status):
        item = dataclasses.replace(item, error=error, fix=fix, source_status=status)
    if item.order is None:
        return item
    if "\\u0000" not in item.order.model_dump_json():  # pydantic's encoder: cheap for every order
        return item
    try:
        return dataclasses.replace(item, order=Order.model_validate(_strip_nul(item.order.model_dump(mode="json"))))
    except ValidationError as exc:  # e.g. a SKU that was nothing but NUL
        return DownloadedOrder(external_id=item.external_id, raw=item.raw, source_status=item.source_status,
                               error=describe_validation_error(exc, item.external_id),
                               fix="correct the order at the source (it holds NUL characters), then re-pull it")


def _within_limits(item: DownloadItem) -> DownloadItem:
    """An order whose fields pass the size limits as it is; otherwise the same order in error."""
    if not isinstance(item, DownloadedOrder) or item.order is None:
        return item
    problems = oversized_fields(item.order)
    if not problems:
        return item
    raw: Mapping[str, Any] = item.raw
    size = len(json.dumps(raw, default=str))
    if size > MAX_RAW_BYTES:
        raw = {"not_kept": f"the source's payload was {size} bytes, more than {MAX_RAW_BYTES}"}
    return DownloadedOrder(external_id=item.external_id, raw=raw, source_status=item.order.source_status[:60],
                           error=describe_oversized(problems, item.order.cust_po_no),
                           fix="shorten those fields at the source, then re-pull the order")


def _refuse_id(conn: Any, row: ConnectionRow, item: DownloadItem) -> None:
    """An order id the ledger cannot key on: not imported, and the connection's owner is told."""
    shown = item.external_id[:60] + ("..." if len(item.external_id) > 60 else "")
    digest = hashlib.sha256(item.external_id.encode("utf-8", "replace")).hexdigest()[:16]
    log.warning("order id of %d characters from %s refused", len(item.external_id), row.name)
    alert(conn, kind="order_refused", key=f"refused:{row.id}:{digest}", connection_id=row.id,
          merchant_id=row.merchant_id,
          message=f"{row.name} sent an order whose id is {len(item.external_id)} characters long ({shown!r}); "
                  f"ids of 1 to {MAX_ID_LENGTH} characters of text (no NUL, valid Unicode) are accepted, so it "
                  "was not imported",
          fix="check the order at the source; if it is real, report it to the connector's maintainers")


def _known(conn: Any, connection_id: int, external_ids: list[str]) -> dict[str, Any]:
    """The stored orders among these ids, in one query."""
    o = t.orders
    rows = conn.execute(stored_columns().where(
        o.c.connection_id == connection_id, o.c.external_id.in_(set(external_ids)))) if external_ids else []
    return {r.external_id: r for r in rows}


def _unchanged(stored: Any, item: DownloadItem) -> bool:
    """True when ``ingest`` would answer "same" without writing (see engine/orders.py)."""
    if stored is None:
        return False
    if isinstance(item, SkippedOrder) or item.order is None:
        return True
    return bool(stored.error_code != "invalid_order" and order_json(item.order) == stored.data)


async def pull(ctx: JobContext, window: Window, via: str = "poll") -> dict[str, int]:
    src = ctx.hub.source(ctx.row)
    tally: dict[str, int] = {}
    batch: list[DownloadItem | ReadEntry] = []
    entries: list[ReadEntry] = []  # read unmapped: checked against the ledger's digests together

    async def flush() -> None:
        items = batch[:]
        batch.clear()
        stored = await ctx.hub.ledger_work(lambda: store_items(ctx.hub, ctx.row, items, via))
        for k, v in stored.items():
            tally[k] = tally.get(k, 0) + v

    async def take(items: Sequence[DownloadItem | ReadEntry]) -> None:
        for item in items:
            batch.append(item)
            if len(batch) >= BATCH:
                await flush()

    async def check() -> None:
        # A scheduled poll passes over the entries the ledger holds exactly as read (not counted
        # either); a re-pull asked for by a person maps them all.
        read = entries[:]
        entries.clear()
        if window.skip_stored:
            read = await ctx.hub.in_transaction(lambda conn: not_held(conn, ctx.row.id, read))
        await take(read)

    async for item in src.download(window):
        if isinstance(item, ReadEntry):
            entries.append(item)
            if len(entries) >= DIGEST_BATCH:
                await check()
        else:
            await take([item])
    if entries:
        await check()
    if batch:
        await flush()
    ctx.count(tally.get("new", 0) + tally.get("updated", 0))
    return tally


async def download(ctx: JobContext) -> None:
    cursor = await ctx.hub.in_ledger(lambda conn: read_cursor(conn, ctx.row.id, "download"))
    now = utcnow()  # read before the pull: anything created during it is re-read next time
    look = LookBack(ctx, "download", cursor)
    tally = await pull(ctx, Window(since=look.since, until=now, skip_stored=True))
    look.read()
    await ctx.hub.in_ledger(lambda conn: write_cursor(conn, ctx.row.id, "download", now))
    if tally:
        ctx.notes.append(", ".join(f"{v} {k}" for k, v in sorted(tally.items())))


async def repull(hub: Hub, connection: str, since: datetime, until: datetime) -> dict[str, int]:
    """Re-read a date range from the source; the cursor is left alone."""
    with hub.db.begin() as conn:
        row = hub.connection(conn, connection)
    ctx = JobContext(hub=hub, row=row, job="repull")
    return await pull(ctx, Window(since=since, until=until), via="re-pull")


async def repull_order(hub: Hub, row: ConnectionRow, external_id: str) -> str:
    item = await hub.source(row).fetch_order(external_id)
    if item is None:
        return "not found at the source"
    tally = store_items(hub, row, [item], "re-pull")
    return next(iter(tally))


async def handle_webhook(hub: Hub, connection: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A webhook is a hint: verify it, de-duplicate on its event id, fetch what it names."""
    from orderbridge.engine.cancels import record_cancellation

    with hub.db.begin() as conn:
        row = hub.connection(conn, connection)
    src = hub.source(row)
    evt = await src.parse_webhook(headers, body)  # AuthError on a forged signature
    try:
        with hub.db.begin() as conn:
            conn.execute(t.webhook_events.insert().values(
                connection_id=row.id, event_id=evt.event_id[:200], received_at=utcnow()))
    except IntegrityError:
        return {"duplicate": True, "event_id": evt.event_id}
    results: dict[str, Any] = {"duplicate": False, "event_id": evt.event_id, "orders": {}}
    for external_id in evt.external_ids:
        if evt.kind == "cancel":
            from orderbridge.domain.models import Cancellation

            with hub.db.begin() as conn:
                results["orders"][external_id] = record_cancellation(
                    conn, hub, row, Cancellation(external_id=external_id, reason="cancelled (webhook)"))
            continue
        item = await src.fetch_order(external_id)
        if item is None:
            results["orders"][external_id] = "not found"
            continue
        tally = store_items(hub, row, [item], "webhook")
        results["orders"][external_id] = next(iter(tally))
        if isinstance(item, SkippedOrder):
            continue
    return results


def webhook_seen(hub: Hub, connection_id: int, event_id: str) -> bool:
    with hub.db.connect() as conn:
        return conn.execute(sa.select(t.webhook_events.c.id).where(
            t.webhook_events.c.connection_id == connection_id, t.webhook_events.c.event_id == event_id)
        ).first() is not None
