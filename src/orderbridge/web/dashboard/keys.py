"""API keys: list a merchant's keys, create one (its secret shown on this one answer only), revoke one.

The rules (levels, which connection a key belongs to, what a merchant may manage) live in
``orderbridge.api.keys``; this page only passes the user's merchant along.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from orderbridge.api.keys import LEVELS, NewKey, create_key, key_connections, list_keys, revoke_key
from orderbridge.connectors.errors import ConfigError, ConnectorError
from orderbridge.web.dashboard import scope
from orderbridge.web.dashboard.auth import Ctx

TYPE_NAMES = {"cartrover_cart": "API Access cart", "cartrover_wms": "CartRover API warehouse"}


def _page(ctx: Ctx, new: NewKey | None = None, status: int = 200) -> Response:
    mid = ctx.user.merchant_id
    with ctx.hub.db.connect() as conn:
        merchants = [n for _, n in scope.merchants(conn, ctx.user)]
    keys = list_keys(ctx.hub.db, include_revoked=True, merchant_id=mid)
    connections = key_connections(ctx.hub.db, merchant_id=mid)
    levels = LEVELS if ctx.user.is_admin else tuple(lv for lv in LEVELS if lv != "warehouse")
    api_url = f"{ctx.request.url.scheme}://{ctx.request.url.netloc}/v1"
    response = ctx.render("keys.html", status, title="API keys", keys=keys, connections=connections,
                          merchants=merchants, levels=levels, new=new, api_url=api_url, type_names=TYPE_NAMES)
    if new is not None:  # the one answer holding the secret: never from a cache
        response.headers["Cache-Control"] = "no-store"
    return response


def keys_page(ctx: Ctx) -> Response:
    return _page(ctx)


async def create(ctx: Ctx) -> Response:
    assert ctx.form is not None
    names = [str(v).strip() for v in ctx.form.getlist("connection") if str(v).strip()]
    level, label = ctx.field("level"), ctx.field("label")
    merchant = (ctx.field("merchant") or None) if ctx.user.is_admin else None
    if names and merchant:  # the connection names the merchant; the merchant field is for a key without one
        merchant = None
    try:
        new = await run_in_threadpool(lambda: create_key(ctx.hub.db, level, merchant=merchant, connections=names,
                                                         label=label, within_merchant=ctx.user.merchant_id))
    except ConnectorError as exc:
        ctx.flash(f"Key not created: {exc}", "error")
        return ctx.redirect("/keys")
    ctx.flash(f"Created the {new.info.level} key {new.info.api_user}. Copy its secret now: it is shown only this once.")
    return await run_in_threadpool(_page, ctx, new)


def revoke(ctx: Ctx) -> Response:
    try:
        info = revoke_key(ctx.hub.db, str(ctx.request.path_params["kid"]), merchant_id=ctx.user.merchant_id)
    except ConfigError:
        raise HTTPException(404, "no such API key") from None
    ctx.flash(f"Revoked the key {info.api_user}: the API refuses it from now on.")
    return ctx.redirect("/keys")
