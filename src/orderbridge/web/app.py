"""The web app: health, webhook intake, and (as it grows) the API and dashboard.

The embedded runner runs inside the same event loop, started and stopped with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from orderbridge.api.app import any_text, build_api
from orderbridge.api.settings import ApiSettings
from orderbridge.connectors.errors import AuthError, ConnectorError
from orderbridge.engine.hub import Hub
from orderbridge.engine.intake import handle_webhook
from orderbridge.ledger import schema as t
from orderbridge.runners.embedded import EmbeddedRunner
from orderbridge.web.dashboard import create_dashboard

MAX_WEBHOOK_BYTES = 1_000_000


async def _capped_body(request: Request) -> bytes | None:
    """The body, or None once it passes the limit (never buffered beyond it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(hub: Hub, *, with_runner: bool = True, api: ApiSettings | None = None) -> Starlette:
    runner = EmbeddedRunner(hub) if with_runner else None

    async def health(request: Request) -> JSONResponse:
        with hub.db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            stale = conn.execute(sa.select(sa.func.count()).select_from(t.job_state).where(
                t.job_state.c.last_status == "failed")).scalar_one()
        return JSONResponse({"ok": True, "runner": "embedded" if runner else "off", "failing_jobs": stale})

    async def webhook(request: Request) -> JSONResponse:
        body = await _capped_body(request)
        if body is None:
            return JSONResponse({"error": f"body too large: webhooks are limited to {MAX_WEBHOOK_BYTES} bytes"},
                                status_code=413)
        try:
            result = await handle_webhook(hub, request.path_params["connection"], dict(request.headers), body)
        except AuthError as exc:
            return JSONResponse({"error": exc.message}, status_code=401)
        except ConnectorError as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        return JSONResponse(result)

    async def metrics(request: Request) -> Response:
        from orderbridge.web.metrics import CONTENT_TYPE, TOKEN_ENV, authorized, render

        if not authorized(request.headers.get("authorization", "")):
            return JSONResponse({"error": "the metrics need the bearer token of the web process",
                                 "fix": f"set {TOKEN_ENV} for `orderbridge serve` and give the scraper the same "
                                        "value as its bearer token"}, status_code=401)
        return Response(render(hub.db), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(runner.run_forever()) if runner else None
        try:
            yield
        finally:
            if runner and task:
                runner.stop()
                await task
            await hub.aclose()

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/webhooks/{connection}", webhook, methods=["POST"]),
            Route("/metrics", metrics),
            Route("/", lambda request: RedirectResponse("/dashboard/"), methods=["GET"]),
            Mount("/dashboard", app=create_dashboard(hub)),
            any_text(Mount("/v1", app=build_api(hub, api))),  # the CartRover-compatible API (docs/api.md)
        ],
        lifespan=lifespan,
    )
