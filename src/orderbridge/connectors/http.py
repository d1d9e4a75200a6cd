"""The HTTP layer every connector's client.py uses.

- a per-account call budget, consulted before every request and shared by all jobs of the process
  (``orderbridge.connectors.budget`` swaps in a cluster-wide one for distributed workers);
- short in-call retries with exponential backoff and jitter (tenacity) for transient failures,
  honouring Retry-After; non-idempotent requests are retried only when the server surely did not
  act on them (connection refused, 429);
- every failure classified into the connector error taxonomy;
- secrets never logged: request logging goes through ``orderbridge.logs`` which redacts them.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from orderbridge.connectors.errors import RateLimited, TransientError

log = logging.getLogger("orderbridge.http")


@dataclass(frozen=True)
class RateSpec:
    """At most ``calls`` requests per ``period`` seconds for one external account."""

    calls: int
    period: float

    def scaled(self, factor: float) -> RateSpec:
        return RateSpec(calls=self.calls, period=self.period / factor)


class RateBudget(Protocol):
    async def acquire(self, key: str, spec: RateSpec) -> None: ...


class LocalBudget:
    """In-process budget: one leaky bucket per account key (aiolimiter).

    Buckets are sized so that no fixed window of the API's period can see more than its limit:
    a bucket of capacity C draining at r admits C + r*T calls in T seconds, so we keep a small
    capacity and run the drain at ``headroom`` of the documented rate.
    """

    def __init__(self, headroom: float = 0.95) -> None:
        self.headroom = headroom
        self._limiters: dict[tuple[int, str], Any] = {}

    def _limiter(self, key: str, spec: RateSpec) -> Any:
        from aiolimiter import AsyncLimiter

        # A limiter belongs to one event loop; a process normally runs one.
        slot = (id(asyncio.get_running_loop()), key)
        lim = self._limiters.get(slot)
        if lim is None:
            rate = spec.calls / spec.period * self.headroom
            burst = max(1, min(spec.calls // 20, 10))
            lim = AsyncLimiter(max_rate=burst, time_period=burst / rate)
            self._limiters[slot] = lim
        return lim

    async def acquire(self, key: str, spec: RateSpec) -> None:
        await self._limiter(key, spec).acquire()


_default_budget: RateBudget = LocalBudget()


def default_budget() -> RateBudget:
    return _default_budget


def set_default_budget(budget: RateBudget) -> None:
    global _default_budget
    _default_budget = budget


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError) and getattr(exc, "in_call_retry", True)


class ApiClient:
    """An httpx.AsyncClient with a budget, retries and error classification."""

    def __init__(
        self,
        base_url: str,
        *,
        account_key: str,
        rate: RateSpec,
        budget: RateBudget | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        attempts: int = 3,
        max_wait: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_key = account_key
        self.rate = rate
        self.budget = budget or default_budget()
        self.attempts = attempts
        self.max_wait = max_wait
        self.calls = 0
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; raise TransientError/RateLimited, return any other response as is.

        4xx answers other than 429 are returned: what they mean is the connector's business.
        """
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(method, url, idempotent, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(float(after), self.max_wait)
        return float(wait_exponential_jitter(multiplier=0.2, max=self.max_wait)(state))

    async def _send_once(self, method: str, url: str, idempotent: bool, **kwargs: Any) -> httpx.Response:
        await self.budget.acquire(self.account_key, self.rate)
        self.calls += 1
        started = time.perf_counter()
        try:
            resp = await self._client.request(method, url, **kwargs)
        except httpx.ConnectError as exc:
            raise TransientError(f"cannot connect to {self.base_url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            err = TransientError(f"{method} {url} timed out at {self.base_url}")
            # A timed-out write may have been applied: let the engine resolve it by lookup.
            err.in_call_retry = idempotent  # type: ignore[attr-defined]
            raise err from exc
        except httpx.HTTPError as exc:
            err = TransientError(f"{method} {url} failed at {self.base_url}: {exc}")
            err.in_call_retry = idempotent  # type: ignore[attr-defined]
            raise err from exc
        elapsed = (time.perf_counter() - started) * 1000
        log.debug("%s %s -> %s in %.0f ms", method, url, resp.status_code, elapsed)
        if resp.status_code == 429:
            raise RateLimited(
                f"{self.base_url} is rate limiting us (HTTP 429)",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )
        if resp.status_code >= 500:
            err = TransientError(
                f"{self.base_url} answered HTTP {resp.status_code}",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                detail=resp.text[:500],
            )
            err.in_call_retry = idempotent  # type: ignore[attr-defined]
            raise err
        return resp
