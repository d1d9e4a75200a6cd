"""The /v1 application: every call authenticated, rate limited, bounded, answered in the envelope
with HTTP 200 (5xx only for a real server fault) and an ``X-CartRover-Process-ID`` header."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderbridge.api import cart_routes, merchant_routes, warehouse_routes
from orderbridge.api.auth import credentials, scope_for
from orderbridge.api.envelope import FAILURE, INVALID, RATE_LIMIT, ApiFailure, error
from orderbridge.api.keys import authenticate
from orderbridge.api.openapi import openapi_document
from orderbridge.api.parsing import read_json_or_form
from orderbridge.api.ratelimit import LeakyBuckets
from orderbridge.api.routing import Call, Endpoint
from orderbridge.api.settings import ApiSettings
from orderbridge.connectors.errors import ConnectorError
from orderbridge.engine.hub import Hub

log = logging.getLogger("orderbridge.api")

REMAINING_HEADER = "X-CartRover-Api-Minute-Hits-Remaining"
PROCESS_HEADER = "X-CartRover-Process-ID"

ENDPOINTS: list[Endpoint] = [*cart_routes.ENDPOINTS, *merchant_routes.ENDPOINTS, *warehouse_routes.EXTENSIONS,
                             merchant_routes.VIEW, *warehouse_routes.ENDPOINTS]


class ProcessId:
    """Gives every response of the API, whatever produced it, a request id clients can quote."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        process_id = uuid.uuid4().hex
        scope.setdefault("state", {})["process_id"] = process_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                name = PROCESS_HEADER.lower().encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != name]
                message = {**message, "headers": [*headers, (PROCESS_HEADER.encode(), process_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _process_id(request: Request) -> str:
    return str(getattr(request.state, "process_id", ""))


def endpoint_view(ep: Endpoint, hub: Hub, settings: ApiSettings, buckets: LeakyBuckets) -> Any:
    async def answer(request: Request, headers: dict[str, str]) -> Response:
        creds = credentials(request)
        if creds is None:
            return error("Missing credentials: send HTTP Basic auth (api_user:api_key) or the api_user and "
                         "api_key query parameters")
        if ep.rate_limited:
            allowed, remaining = buckets.hit(creds[0])
            headers[REMAINING_HEADER] = str(remaining)
            if not allowed:
                return error("Over API Limit. Please slow down requests.", RATE_LIMIT)
        key, why = await run_in_threadpool(authenticate, hub.db, *creds)
        if key is None:
            return error(f"Invalid credentials: {why}")
        scope = scope_for(key, request, ep.level)
        body = await read_json_or_form(request, settings.max_body_bytes) if ep.body else None
        response: Response = await run_in_threadpool(ep.handler, Call(request, hub, settings, scope, body))
        return response

    async def view(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            response = await answer(request, headers)
        except ApiFailure as exc:
            response = error(exc.message, exc.code, exc.detail)
        except ConnectorError as exc:
            response = error(exc.message, INVALID, {"fix": exc.fix} if exc.fix else None)
        except Exception:
            log.exception("API call %s %s failed (process id %s)", request.method, request.url.path,
                          _process_id(request))
            response = error(f"Internal error; quote process id {_process_id(request)} to support", FAILURE,
                             status_code=500)
        response.headers.update(headers)
        return response

    return view


R = TypeVar("R", bound=BaseRoute)


def any_text(route: R) -> R:
    """Let the route's path parameters hold any character, a newline too (cust_refs and SKUs are free
    text, and Starlette's patterns stop at one): the API answers such a path in its envelope instead of
    the web app's bare 404."""
    pattern = getattr(route, "path_regex", None)
    if pattern is not None:
        route.path_regex = re.compile(pattern.pattern, re.DOTALL)  # type: ignore[attr-defined]
    return route


def build_api(hub: Hub, settings: ApiSettings | None = None) -> ASGIApp:
    settings = settings or ApiSettings()
    buckets = LeakyBuckets(size=settings.bucket_size, leak_seconds=settings.leak_seconds)
    routes = [any_text(Route(ep.starlette_path, endpoint_view(ep, hub, settings, buckets), methods=[ep.method]))
              for ep in ENDPOINTS]
    document = openapi_document(ENDPOINTS, settings)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def not_found(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 404
        if code == 405:
            return error(f"{request.method} is not allowed on {request.url.path}; see /v1/openapi.json")
        return error(f"Unknown endpoint {request.url.path}; see /v1/openapi.json")

    app = Starlette(routes=[Route("/openapi.json", openapi, methods=["GET"]), *routes],
                    exception_handlers={HTTPException: not_found})
    return ProcessId(app)
