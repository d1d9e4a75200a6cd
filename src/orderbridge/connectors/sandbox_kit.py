"""What every sandbox (API emulator) shares: call log, fault injection, rate limits, admin surface.

A sandbox is a Starlette app built by ``SandboxKit.app(routes, admin_routes)``. The kit adds, under
``/__sandbox__`` (a path no real API uses):

- ``GET  /__sandbox__/calls``            every call received (method, path, query, status, ``arrived``:
                                         when it came in, the moment a rate limit counts it; ``at``:
                                         when it was answered; ``ms`` between the two);
                                         ``?since=N`` returns calls after sequence number N
- ``DELETE /__sandbox__/calls``          forget the call log
- ``GET  /__sandbox__/faults``           the fault plan in force
- ``POST /__sandbox__/faults``           set it: ``{"rates": {"500": 0.1, "timeout": 0.05, ...},
                                         "next": [{"kind": "503", "count": 2}], "latency_ms": 50,
                                         "hang_seconds": 30, "match": "substring of path/query"}``
- ``DELETE /__sandbox__/faults``         clear every fault
- ``GET|POST /__sandbox__/rate_limit``   read or set ``{"enabled": true, "calls": 60, "period": 60}``
- ``GET  /__sandbox__/health``           liveness

Fault kinds: ``500``, ``502``, ``503`` (answered before the request is processed), ``429`` (a burst
of rate-limit answers), ``timeout`` (hang before processing), ``timeout_after`` (process, then hang:
the write happened but the client never hears of it), ``malformed`` (process, then answer a
truncated body with status 200), ``reset`` (close without answering, before processing).

Each sandbox adds its own admin routes (seed data, act as the buyer or the warehouse, inspect state).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from orderbridge import event_loop

ADMIN_PREFIX = "/__sandbox__"

FAULT_KINDS = ("500", "502", "503", "429", "timeout", "timeout_after", "malformed", "reset")


@dataclass
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    next: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0
    hang_seconds: float = 30.0
    match: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rates": self.rates,
            "next": self.next,
            "latency_ms": self.latency_ms,
            "hang_seconds": self.hang_seconds,
            "match": self.match,
        }


class RateLimitExceeded(Exception):
    def __init__(self, retry_after: float, remaining: int = 0) -> None:
        self.retry_after = retry_after
        self.remaining = remaining


@dataclass
class FixedWindowLimiter:
    """A fixed-window counter per key (the shape most documented API limits take)."""

    calls: int
    period: float
    enabled: bool = True
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def hit(self, key: str) -> tuple[int, float]:
        """Count a call; return (remaining, seconds until reset) or raise RateLimitExceeded."""
        now = time.monotonic()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.period:
            start, count = now, 0
        reset = self.period - (now - start)
        if self.enabled and count >= self.calls:
            raise RateLimitExceeded(retry_after=max(reset, 0.01))
        self._windows[key] = (start, count + 1)
        return max(self.calls - count - 1, 0), reset

    def configure(self, data: dict[str, Any]) -> None:
        self.enabled = bool(data.get("enabled", self.enabled))
        self.calls = int(data.get("calls", self.calls))
        self.period = float(data.get("period", self.period))
        self._windows.clear()

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "calls": self.calls, "period": self.period}


class SandboxKit:
    """Shared state of one sandbox instance: its call log, faults and rate limiter."""

    def __init__(self, name: str, *, rate_limit: FixedWindowLimiter | None = None, seed: int = 0) -> None:
        self.name = name
        self.faults = FaultPlan()
        self.limiter = rate_limit or FixedWindowLimiter(calls=10_000, period=1.0, enabled=False)
        self.calls: deque[dict[str, Any]] = deque(maxlen=200_000)
        self.seq = 0
        self.rng = random.Random(seed)
        self.lock = asyncio.Lock()  # sandboxes serialise state changes with this

    # -------------------------------------------------------------------------------- faults
    def _pick_fault(self, request: Request) -> str | None:
        plan = self.faults
        target = f"{request.url.path}?{request.url.query}"
        if plan.match and plan.match not in target:
            return None
        while plan.next:
            head = plan.next[0]
            if head.get("count", 1) <= 0:
                plan.next.pop(0)
                continue
            head["count"] = head.get("count", 1) - 1
            if head["count"] <= 0:
                plan.next.pop(0)
            return str(head["kind"])
        for kind, rate in plan.rates.items():
            if rate > 0 and self.rng.random() < rate:
                return kind
        return None

    def record(self, request: Request, status: int, started: float, fault: str | None) -> None:
        self.seq += 1
        self.calls.append(
            {
                "seq": self.seq,
                "arrived": request.scope.get("sandbox_arrived", time.time()),
                "at": time.time(),
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "fault": fault,
                "tag": request.scope.get("sandbox_tag", ""),
            }
        )

    # ------------------------------------------------------------------------------- the app
    def app(
        self,
        routes: Sequence[BaseRoute],
        admin_routes: Sequence[BaseRoute] = (),
        *,
        rate_limited_response: Callable[[Request, RateLimitExceeded], Response] | None = None,
        rate_key: Callable[[Request], str] | None = None,
        on_startup: Callable[[], Awaitable[None]] | None = None,
    ) -> Starlette:
        kit = self

        class KitMiddleware(BaseHTTPMiddleware):
            async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
                if request.url.path.startswith(ADMIN_PREFIX):
                    return await call_next(request)
                started = time.perf_counter()
                request.scope["sandbox_arrived"] = time.time()
                fault = kit._pick_fault(request)
                if kit.faults.latency_ms:
                    await asyncio.sleep(kit.faults.latency_ms / 1000)
                if fault in {"500", "502", "503"}:
                    kit.record(request, int(fault), started, fault)
                    return JSONResponse({"error": f"sandbox injected {fault}"}, status_code=int(fault))
                if fault == "429":
                    kit.record(request, 429, started, fault)
                    exc = RateLimitExceeded(retry_after=1.0)
                    if rate_limited_response:
                        return rate_limited_response(request, exc)
                    return JSONResponse({"error": "rate limited"}, status_code=429, headers={"Retry-After": "1"})
                if fault == "timeout":
                    kit.record(request, 0, started, fault)
                    await asyncio.sleep(kit.faults.hang_seconds)
                    return Response(status_code=504)
                if fault == "reset":
                    kit.record(request, 0, started, fault)
                    raise ConnectionResetError("sandbox injected a connection reset")
                try:
                    remaining, reset = kit.limiter.hit(rate_key(request) if rate_key else "global")
                except RateLimitExceeded as exc:
                    kit.record(request, 429, started, "rate_limit")
                    if rate_limited_response:
                        return rate_limited_response(request, exc)
                    return JSONResponse(
                        {"error": "rate limited"},
                        status_code=429,
                        headers={"Retry-After": str(max(1, round(exc.retry_after)))},
                    )
                request.scope["rate_remaining"] = remaining
                request.scope["rate_reset"] = reset
                response = await call_next(request)
                if fault == "timeout_after":
                    kit.record(request, response.status_code, started, fault)
                    await asyncio.sleep(kit.faults.hang_seconds)
                    return Response(status_code=504)
                if fault == "malformed":
                    kit.record(request, 200, started, fault)
                    return Response(b'{"truncated": tru', status_code=200, media_type="application/json")
                kit.record(request, response.status_code, started, None)
                return response

        async def calls(request: Request) -> Response:
            since = int(request.query_params.get("since", "0"))
            return JSONResponse([c for c in kit.calls if c["seq"] > since])

        async def clear_calls(request: Request) -> Response:
            kit.calls.clear()
            return JSONResponse({"ok": True})

        async def get_faults(request: Request) -> Response:
            return JSONResponse(kit.faults.as_dict())

        async def set_faults(request: Request) -> Response:
            data = await request.json()
            bad = [k for k in [*data.get("rates", {}), *(n.get("kind") for n in data.get("next", []))]
                   if str(k) not in FAULT_KINDS]
            if bad:
                return JSONResponse({"error": f"unknown fault kinds {bad}; use {FAULT_KINDS}"}, status_code=400)
            kit.faults = FaultPlan(
                rates={str(k): float(v) for k, v in data.get("rates", {}).items()},
                next=[dict(n) for n in data.get("next", [])],
                latency_ms=float(data.get("latency_ms", 0)),
                hang_seconds=float(data.get("hang_seconds", 30)),
                match=str(data.get("match", "")),
            )
            return JSONResponse(kit.faults.as_dict())

        async def clear_faults(request: Request) -> Response:
            kit.faults = FaultPlan()
            return JSONResponse(kit.faults.as_dict())

        async def rate_limit(request: Request) -> Response:
            if request.method == "POST":
                kit.limiter.configure(await request.json())
            return JSONResponse(kit.limiter.as_dict())

        async def health(request: Request) -> Response:
            return JSONResponse({"sandbox": kit.name, "ok": True})

        admin = Mount(
            ADMIN_PREFIX,
            routes=[
                Route("/calls", calls, methods=["GET"]),
                Route("/calls", clear_calls, methods=["DELETE"]),
                Route("/faults", get_faults, methods=["GET"]),
                Route("/faults", set_faults, methods=["POST"]),
                Route("/faults", clear_faults, methods=["DELETE"]),
                Route("/rate_limit", rate_limit, methods=["GET", "POST"]),
                Route("/health", health, methods=["GET"]),
                *admin_routes,
            ],
        )

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> Any:
            if on_startup:
                await on_startup()
            yield

        return Starlette(routes=[admin, *routes], middleware=[Middleware(KitMiddleware)], lifespan=lifespan)


# ------------------------------------------------------------------------------- serving


# Idle connections stay open this long, as behind real APIs' load balancers: a client whose own
# idle expiry is shorter (httpx: 5 s) never sends on a connection the server is closing.
KEEP_ALIVE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedApp:
    """A Starlette app served by uvicorn in a background thread (tests, demo, bench)."""

    def __init__(self, app: Any, port: int = 0, host: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.host = host
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="on",
                                timeout_keep_alive=KEEP_ALIVE_SECONDS, loop=event_loop.loop_name())
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"serve:{self.port}")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
