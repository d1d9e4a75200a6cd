"""The HTTP layer's retries in a call, against a real local server: which answers are retried,
how many times, after how long, and which are handed back as they are."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orderbridge.connectors.errors import RateLimited, TransientError
from orderbridge.connectors.http import ApiClient, RateSpec
from orderbridge.connectors.sandbox_kit import ServedApp


class Script:
    """Per path, the answers still to give (status, headers, delay), then 200; and what was asked."""

    def __init__(self) -> None:
        self.plans: dict[str, list[tuple[int, dict[str, str], float]]] = {}
        self.seen: dict[str, list[float]] = {}

    async def answer(self, request: Request) -> Response:
        path = request.url.path
        self.seen.setdefault(path, []).append(time.monotonic())
        plan = self.plans.get(path) or []
        if plan:
            status, headers, delay = plan.pop(0)
            await asyncio.sleep(delay)
            return JSONResponse({"status": status}, status_code=status, headers=headers)
        return JSONResponse({"ok": True})


@pytest.fixture
def served() -> Iterator[tuple[Script, str]]:
    script = Script()
    app = Starlette(routes=[Route("/{name}", script.answer, methods=["GET", "POST"])])
    server = ServedApp(app).start()
    try:
        yield script, server.url
    finally:
        server.stop()


def call(url: str, method: str, path: str, **kw: Any) -> Any:
    async def go() -> Any:
        client = ApiClient(url, account_key="k", rate=RateSpec(calls=1000, period=1), max_wait=0.5, **kw)
        try:
            return await client.request(method, path)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_first_answer_that_succeeds_is_one_call(served: tuple[Script, str]) -> None:
    script, url = served
    assert call(url, "GET", "/ok").json() == {"ok": True}
    assert len(script.seen["/ok"]) == 1


def test_server_errors_are_retried_then_succeed(served: tuple[Script, str]) -> None:
    script, url = served
    script.plans["/flaky"] = [(503, {}, 0.0), (502, {}, 0.0)]
    assert call(url, "GET", "/flaky").json() == {"ok": True}
    assert len(script.seen["/flaky"]) == 3


def test_attempts_are_bounded_and_the_last_error_is_raised(served: tuple[Script, str]) -> None:
    script, url = served
    script.plans["/down"] = [(503, {}, 0.0)] * 5
    with pytest.raises(TransientError, match="HTTP 503"):
        call(url, "GET", "/down")
    assert len(script.seen["/down"]) == 3  # the default: three attempts


def test_a_429_waits_for_retry_after(served: tuple[Script, str]) -> None:
    script, url = served
    script.plans["/limited"] = [(429, {"Retry-After": "0.3"}, 0.0)]
    assert call(url, "GET", "/limited").json() == {"ok": True}
    first, second = script.seen["/limited"]
    assert second - first >= 0.28


def test_a_429_on_the_last_attempt_is_raised_as_rate_limited(served: tuple[Script, str]) -> None:
    script, url = served
    script.plans["/limited"] = [(429, {"Retry-After": "0"}, 0.0)] * 3
    with pytest.raises(RateLimited):
        call(url, "GET", "/limited")
    assert len(script.seen["/limited"]) == 3


def test_a_timed_out_write_is_not_sent_again(served: tuple[Script, str]) -> None:
    """It may have been applied: the engine resolves it by a lookup, not by a second POST."""
    script, url = served
    script.plans["/create"] = [(200, {}, 1.5)]
    with pytest.raises(TransientError, match="timed out"):
        call(url, "POST", "/create", timeout=0.5)
    assert len(script.seen["/create"]) == 1


def test_client_errors_are_handed_back_without_a_retry(served: tuple[Script, str]) -> None:
    script, url = served
    script.plans["/bad"] = [(422, {}, 0.0)]
    assert call(url, "POST", "/bad").status_code == 422
    assert len(script.seen["/bad"]) == 1
