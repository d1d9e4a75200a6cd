"""Connections: list, add / edit (forms from the connector's schema), test, enable, test mode, diagnose."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from orderbridge.connectors.base import Role
from orderbridge.connectors.errors import ConnectorError
from orderbridge.connectors.registry import connector_class, connector_types
from orderbridge.engine.connections import ConnectionForm, save_connection, set_flags, set_route, test_connection
from orderbridge.engine.diagnose import diagnose
from orderbridge.engine.hub import ConnectionRow
from orderbridge.ledger import schema as t
from orderbridge.web.dashboard import scope
from orderbridge.web.dashboard.auth import Ctx
from orderbridge.web.dashboard.forms import Field, model_fields, parse_fields, rate_fields, refill, schedule_fields
from orderbridge.web.dashboard.overview import runner_health


def list_connections(ctx: Ctx) -> Response:
    c, m, o, r = t.connections, t.merchants, t.orders, t.routes
    backend = sa.alias(c)
    counts = sa.select(sa.func.count()).where(o.c.connection_id == c.c.id).scalar_subquery()
    errors = sa.select(sa.func.count()).where(o.c.connection_id == c.c.id, o.c.status == "error").scalar_subquery()
    q = (sa.select(c.c.name, c.c.type, c.c.role, c.c.enabled, c.c.test_mode, m.c.name.label("merchant"),
                   counts.label("orders"), errors.label("errors"), backend.c.name.label("route"))
         .join(m, m.c.id == c.c.merchant_id).outerjoin(r, r.c.source_id == c.c.id)
         .outerjoin(backend, backend.c.id == r.c.backend_id)
         .where(scope.merchant_clause(ctx.user, c.c.merchant_id)).order_by(m.c.name, c.c.role.desc(), c.c.name))
    with ctx.hub.db.connect() as conn:
        rows = conn.execute(q).mappings().all()
    types = connector_types()
    return ctx.render("connections.html", title="Connections", rows=rows,
                      names={k: getattr(v, "display_name", k) for k, v in types.items()})


def _types() -> list[dict[str, str]]:
    return [{"type": k, "name": getattr(cls, "display_name", k), "role": str(cls.role),
             "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""}
            for k, cls in sorted(connector_types().items(), key=lambda kv: (str(kv[1].role) != "source", kv[0]))]


def _backends(ctx: Ctx, conn: Any) -> list[tuple[str, str]]:
    c, m = t.connections, t.merchants
    return [(str(n), str(mn)) for n, mn in conn.execute(
        sa.select(c.c.name, m.c.name).join(m, m.c.id == c.c.merchant_id)
        .where(c.c.role == str(Role.BACKEND), scope.merchant_clause(ctx.user, c.c.merchant_id)).order_by(c.c.name))]


def _form_page(ctx: Ctx, kind: str, row: ConnectionRow | None, *, status: int = 200, error: str = "",
               fix: str = "", submitted: dict[str, Any] | None = None) -> Response:
    cls = connector_class(kind)
    creds = ctx.hub.box().open(row.credentials_enc) if row else {}
    settings = model_fields(cls.settings_model, "settings", row.settings if row else {})
    credentials = model_fields(cls.credentials_model, "credentials", creds, secret=True)
    schedule = schedule_fields(cls, row.schedule if row else {})
    rate = rate_fields(row.rate_limit if row else None)
    sub = submitted or {}
    if submitted is not None:
        refill(settings, sub.get("settings", {}))
        refill(schedule, sub.get("schedule", {}))
        refill(rate, sub.get("rate") or {})
    with ctx.hub.db.connect() as conn:
        backends = _backends(ctx, conn)
        merchants = [n for _, n in scope.merchants(conn, ctx.user)]
        route = None
        if row is not None and row.role == str(Role.SOURCE):
            rr = ctx.hub.route_for_source(conn, row.id)
            route = ctx.hub.connection(conn, rr.backend_id).name if rr else None
    common = {
        "name": sub.get("name", row.name if row else ""),
        "merchant": sub.get("merchant", row.merchant if row else (ctx.user.merchant or "")),
        "base_url": sub.get("base_url", row.base_url if row else ""),
        "test_mode": sub.get("test_mode", row.test_mode if row else True),
        "enabled": sub.get("enabled", row.enabled if row else True),
        "route": sub.get("route", route or ""),
    }
    return ctx.render("connection_form.html", status, title=f"Edit {row.name}" if row else f"Add a {cls.display_name} "
                      "connection", cls=cls, kind=kind, row=row, common=common, settings=settings,
                      credentials=credentials, schedule=schedule, rate=rate, backends=backends, merchants=merchants,
                      error=error, fix=fix, role=str(cls.role))


def new_connection(ctx: Ctx) -> Response:
    kind = ctx.field("type")
    if not kind:
        return ctx.render("connection_types.html", title="Add a connection", types=_types())
    if kind not in connector_types():
        raise HTTPException(404, f"unknown connector type {kind!r}")
    return _form_page(ctx, kind, None)


def _visible(ctx: Ctx, name: str) -> ConnectionRow:
    with ctx.hub.db.connect() as conn:
        return scope.connection(conn, ctx.hub, ctx.user, name)


def edit_connection(ctx: Ctx) -> Response:
    row = _visible(ctx, ctx.request.path_params["name"])
    return _form_page(ctx, row.type, row)


def _submitted(ctx: Ctx, kind: str, fields: dict[str, list[Field]]) -> tuple[ConnectionForm, dict[str, Any], str]:
    assert ctx.form is not None
    merchant = ctx.field("merchant") if ctx.user.is_admin else (ctx.user.merchant or "")
    sub: dict[str, Any] = {"name": ctx.field("name"), "merchant": merchant, "base_url": ctx.field("base_url"),
                           "test_mode": ctx.form.get("test_mode") is not None,
                           "enabled": ctx.form.get("enabled") is not None, "route": ctx.field("route")}
    form = ConnectionForm(name=sub["name"], merchant=merchant, type=kind, base_url=sub["base_url"],
                          test_mode=sub["test_mode"], enabled=sub["enabled"])
    sub["settings"] = form.settings = parse_fields(fields["settings"], ctx.form)
    form.credentials = parse_fields(fields["credentials"], ctx.form)
    sub["schedule"] = form.schedule = parse_fields(fields["schedule"], ctx.form)
    rate = {k: v for k, v in parse_fields(fields["rate"], ctx.form).items() if v is not None}
    sub["rate"] = form.rate_limit = rate or None
    return form, sub, sub["route"]


async def save(ctx: Ctx) -> Response:
    name = ctx.request.path_params.get("name")
    if name:
        row: ConnectionRow | None = await run_in_threadpool(_visible, ctx, name)
        assert row is not None
        kind = row.type
    else:
        row, kind = None, ctx.field("type")
        if kind not in connector_types():
            raise HTTPException(404, f"unknown connector type {kind!r}")
    cls = connector_class(kind)
    fields = {"settings": model_fields(cls.settings_model, "settings", {}),
              "credentials": model_fields(cls.credentials_model, "credentials", {}, secret=True),
              "schedule": schedule_fields(cls, {}), "rate": rate_fields(None)}
    submitted: dict[str, Any] = {}
    try:
        form, submitted, route = _submitted(ctx, kind, fields)
        if row is not None:
            form.name = row.name
        with ctx.hub.db.connect() as conn:
            if not scope.merchant_name_allowed(conn, ctx.user, form.merchant):
                raise HTTPException(403, "you can only add connections of your own merchant")
        warnings = await run_in_threadpool(save_connection, ctx.hub, form, create=row is None)
        if route and str(cls.role) == str(Role.SOURCE):
            with ctx.hub.db.connect() as conn:
                scope.connection(conn, ctx.hub, ctx.user, route)
            await run_in_threadpool(set_route, ctx.hub, form.name, route)
    except ConnectorError as exc:
        message, fix = exc.message, exc.fix
        return await run_in_threadpool(lambda: _form_page(ctx, kind, row, status=422, error=message, fix=fix,
                                                          submitted=submitted))
    for w in warnings:
        ctx.flash(f"Warning: {w}", "warn")
    ctx.flash(f"Connection {form.name} saved.")
    await _test_and_flash(ctx, form.name)
    return ctx.redirect(f"/connections/{form.name}")


async def _test_and_flash(ctx: Ctx, name: str) -> None:
    result = await test_connection(ctx.hub, name)
    if result.ok:
        ctx.flash(f"Test passed: {result.message}")
    else:
        ctx.flash(f"Test failed: {result.message}", "error")


def show_connection(ctx: Ctx) -> Response:
    row = _visible(ctx, ctx.request.path_params["name"])
    cls = connector_class(row.type)
    with ctx.hub.db.connect() as conn:
        route = ctx.hub.route_for_source(conn, row.id) if row.role == str(Role.SOURCE) else None
        backend = ctx.hub.connection(conn, route.backend_id).name if route else None
        feeds = [ctx.hub.connection(conn, r.source_id).name for r in ctx.hub.routes_to_backend(conn, row.id)]
        health = [h for h in runner_health(ctx, conn) if h["connection"] == row.name]
        orders = {str(s): int(n) for s, n in conn.execute(sa.select(t.orders.c.status, sa.func.count()).where(
            t.orders.c.connection_id == row.id).group_by(t.orders.c.status))}
    creds = ctx.hub.box().open(row.credentials_enc)
    settings = model_fields(cls.settings_model, "settings", row.settings)
    credentials = model_fields(cls.credentials_model, "credentials", creds, secret=True)
    return ctx.render("connection.html", title=row.name, row=row, cls=cls, backend=backend, feeds=feeds,
                      health=health, orders=orders, settings=settings, credentials=credentials,
                      can_diagnose=cls.capabilities.diagnose)


async def test(ctx: Ctx) -> Response:
    row = await run_in_threadpool(_visible, ctx, ctx.request.path_params["name"])
    await _test_and_flash(ctx, row.name)
    return ctx.redirect(f"/connections/{row.name}")


def toggle(ctx: Ctx) -> Response:
    row = _visible(ctx, ctx.request.path_params["name"])
    what, value = ctx.field("what"), ctx.field("value") == "on"
    if what == "enabled":
        set_flags(ctx.hub, row.name, enabled=value)
        ctx.flash(f"{row.name} {'enabled: its jobs run on their schedules' if value else 'disabled: no job runs'}.")
    elif what == "test_mode":
        set_flags(ctx.hub, row.name, test_mode=value)
        ctx.flash(f"Test mode {'on: talks to the sandbox at the API address' if value else 'off'} for {row.name}.")
    else:
        raise HTTPException(400, "unknown switch")
    return ctx.redirect(f"/connections/{row.name}")


async def run_diagnosis(ctx: Ctx) -> Response:
    row = await run_in_threadpool(_visible, ctx, ctx.request.path_params["name"])
    order_id = ctx.field("order_id") or None
    try:
        days = max(1, min(365, int(ctx.field("days") or "30")))
    except ValueError:
        days = 30
    error, findings = "", []
    try:
        findings = await diagnose(ctx.hub, row.name, order_id, days)
    except ConnectorError as exc:
        error = str(exc)
    missing = [f for f in findings if f.state != "imported"]
    return await run_in_threadpool(lambda: ctx.render(
        "diagnose.html", title=f"Diagnose {row.name}", row=row, findings=findings, missing=missing,
        order_id=order_id or "", days=days, error=error))
