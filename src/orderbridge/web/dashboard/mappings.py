"""Mappings: SKU aliases and ship-method mappings, added one by one or by CSV, and exported as CSV.

Saving goes through the engine (``add_alias`` / ``add_ship_method``), which also retries the
orders in error that the new mapping fixes.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa
from starlette.datastructures import UploadFile
from starlette.responses import Response

from orderbridge.connectors.errors import ConfigError, ConnectorError
from orderbridge.engine.operations import add_alias, add_ship_method
from orderbridge.ledger import schema as t
from orderbridge.web.dashboard import scope
from orderbridge.web.dashboard.auth import Ctx

ALIAS_COLUMNS = ["merchant", "alias", "sku"]
SHIP_COLUMNS = ["merchant", "source_method", "carrier", "service"]
MAX_CSV_BYTES = 5 * 1024 * 1024


def _aliases(ctx: Ctx, conn: Any) -> list[dict[str, Any]]:
    a, m = t.sku_aliases, t.merchants
    return [dict(r) for r in conn.execute(
        sa.select(m.c.name.label("merchant"), a.c.alias, a.c.sku).join(m, m.c.id == a.c.merchant_id)
        .where(scope.merchant_clause(ctx.user, m.c.id)).order_by(m.c.name, a.c.alias)).mappings()]


def _ship_methods(ctx: Ctx, conn: Any) -> list[dict[str, Any]]:
    s, m = t.ship_method_maps, t.merchants
    return [dict(r) for r in conn.execute(
        sa.select(m.c.name.label("merchant"), s.c.source_method, s.c.carrier, s.c.service)
        .join(m, m.c.id == s.c.merchant_id).where(scope.merchant_clause(ctx.user, m.c.id))
        .order_by(m.c.name, s.c.source_method)).mappings()]


def mappings_page(ctx: Ctx) -> Response:
    with ctx.hub.db.connect() as conn:
        aliases, ships = _aliases(ctx, conn), _ship_methods(ctx, conn)
        merchants = [n for _, n in scope.merchants(conn, ctx.user)]
    return ctx.render("mappings.html", title="Mappings", aliases=aliases, ships=ships, merchants=merchants,
                      prefill_alias=ctx.field("alias"), prefill_merchant=ctx.field("merchant"))


def _merchant(ctx: Ctx, given: str) -> str:
    """The merchant a mapping is for: a merchant's user may only name their own."""
    if not ctx.user.is_admin:
        if given and given != ctx.user.merchant:
            raise ConfigError(f"you cannot change mappings of merchant {given!r}",
                              fix=f"leave the merchant empty or use {ctx.user.merchant!r}")
        return str(ctx.user.merchant)
    if not given:
        raise ConfigError("the merchant is missing", fix="choose the merchant the mapping is for")
    return given


def save_alias(ctx: Ctx) -> Response:
    alias, sku = ctx.field("alias"), ctx.field("sku")
    try:
        if not alias or not sku:
            raise ConfigError("both SKUs are needed", fix="enter the SKU as the source sends it and as the "
                              "backend knows it")
        retried = add_alias(ctx.hub, _merchant(ctx, ctx.field("merchant")), alias, sku)
    except ConnectorError as exc:
        ctx.flash(f"Alias not saved: {exc}", "error")
        return ctx.redirect("/mappings")
    ctx.flash(f"Alias {alias} → {sku} saved; {len(retried)} order(s) in error with {alias} will be retried.")
    return ctx.redirect("/mappings")


def save_ship_method(ctx: Ctx) -> Response:
    method = ctx.field("source_method")
    try:
        if not method:
            raise ConfigError("the source's shipping method is missing", fix="enter it as the source sends it")
        retried = add_ship_method(ctx.hub, _merchant(ctx, ctx.field("merchant")), method, ctx.field("carrier"),
                                  ctx.field("service"))
    except ConnectorError as exc:
        ctx.flash(f"Ship method not saved: {exc}", "error")
        return ctx.redirect("/mappings")
    ctx.flash(f"Ship method {method!r} mapped; {len(retried)} order(s) will be retried.")
    return ctx.redirect("/mappings")


async def _csv_rows(ctx: Ctx, columns: list[str]) -> list[dict[str, str]]:
    upload = ctx.form.get("file") if ctx.form is not None else None
    if not isinstance(upload, UploadFile):
        raise ConfigError("no CSV file was sent", fix="choose a file to import")
    data = await upload.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise ConfigError("the CSV file is larger than 5 MB", fix="split it into smaller files")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError("the CSV file is not UTF-8 text", fix="save it as CSV UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns[1:] if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"the CSV file has no column {', '.join(missing)}",
                          fix=f"the first line must name the columns: {','.join(columns)}")
    rows, problems = [], []
    for n, row in enumerate(reader, start=2):
        clean = {c: (row.get(c) or "").strip() for c in columns}
        try:
            clean["merchant"] = _merchant(ctx, clean["merchant"])
        except ConfigError as exc:
            problems.append(f"line {n}: {exc.message}")
        if not clean[columns[1]] or (columns is ALIAS_COLUMNS and not clean["sku"]):
            problems.append(f"line {n}: {columns[1]}{' or sku' if columns is ALIAS_COLUMNS else ''} is empty")
        rows.append(clean)
    if problems:
        raise ConfigError("nothing was imported: " + "; ".join(problems[:10]) +
                          (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""),
                          fix="correct those lines and import the file again")
    return rows


async def import_aliases(ctx: Ctx) -> Response:
    from starlette.concurrency import run_in_threadpool

    try:
        rows = await _csv_rows(ctx, ALIAS_COLUMNS)

        def apply() -> int:
            return sum(len(add_alias(ctx.hub, r["merchant"], r["alias"], r["sku"])) for r in rows)

        retried = await run_in_threadpool(apply)
    except ConnectorError as exc:
        ctx.flash(f"Import failed: {exc}", "error")
        return ctx.redirect("/mappings")
    ctx.flash(f"{len(rows)} alias(es) imported; {retried} order(s) will be retried.")
    return ctx.redirect("/mappings")


async def import_ship_methods(ctx: Ctx) -> Response:
    from starlette.concurrency import run_in_threadpool

    try:
        rows = await _csv_rows(ctx, SHIP_COLUMNS)

        def apply() -> int:
            return sum(len(add_ship_method(ctx.hub, r["merchant"], r["source_method"], r["carrier"], r["service"]))
                       for r in rows)

        retried = await run_in_threadpool(apply)
    except ConnectorError as exc:
        ctx.flash(f"Import failed: {exc}", "error")
        return ctx.redirect("/mappings")
    ctx.flash(f"{len(rows)} ship-method mapping(s) imported; {retried} order(s) will be retried.")
    return ctx.redirect("/mappings")


def _csv(rows: list[dict[str, Any]], columns: list[str], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def export_aliases(ctx: Ctx) -> Response:
    with ctx.hub.db.connect() as conn:
        return _csv(_aliases(ctx, conn), ALIAS_COLUMNS, "sku-aliases.csv")


def export_ship_methods(ctx: Ctx) -> Response:
    with ctx.hub.db.connect() as conn:
        return _csv(_ship_methods(ctx, conn), SHIP_COLUMNS, "ship-methods.csv")
