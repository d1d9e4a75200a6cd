"""The HTTP layer every connector's client.py uses.

- a per-account call budget, consulted before every request and shared by all jobs of the process
  (``orderbridge.connectors.budget`` swaps in a cluster-wide one for distributed workers);
- short in-call retries with exponential backoff and jitter (tenacity) for transient failures,
  honouring Retry-After; non-idempotent requests are retried only when the server surely did not
  act on them (connection refused, 429);
- every failure classified into the connector error taxonomy;
- secrets never logged: request logging goes through ``orderbridge.logs`` which redacts them.

Requests go out through aiohttp: a hub makes several calls per order, and aiohttp's client spends
about a tenth of the CPU per request that httpx does (measured side by side against a sandbox),
which at volume is a large share of the hub's own work. Connectors see only ``HttpResponse``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from orderbridge import __version__, json_codec
from orderbridge.connectors.errors import RateLimited, TransientError

log = logging.getLogger("orderbridge.http")

KEEPALIVE_SECONDS = 4.0  # below the usual server idle timeouts (5 s and up): never reuse a closing connection
Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class HttpResponse:
    """An API's answer, read in full: what connectors' clients look at."""

    status_code: int
    headers: CIMultiDictProxy[str]
    content: bytes
    charset: str | None = None
    url: str = ""  # the address that answered

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def text(self) -> str:
        return self.content.decode(self.charset or "utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json_codec.loads(self.content.decode(self.charset or "utf-8", errors="replace"))


def _query_value(value: Any) -> str:
    # As query strings are usually written: true/false, empty for None.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query(params: Params | None) -> list[tuple[str, str]] | None:
    if params is None:
        return None
    pairs = params.items() if isinstance(params, Mapping) else params
    return [(str(k), _query_value(v)) for k, v in pairs]


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
    """An aiohttp session with a budget, retries and error classification."""

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
        max_connections: int = 50,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_key = account_key
        self.rate = rate
        self.budget = budget or default_budget()
        self.attempts = attempts
        self.max_wait = max_wait
        self.calls = 0
        self.max_connections = max_connections
        self._headers = {"User-Agent": f"orderbridge/{__version__}", **dict(headers or {})}
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0))
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._backoff = wait_exponential_jitter(multiplier=0.2, max=max_wait)
        self._retry_kind = AsyncRetrying()  # what a backoff state names as its retrier

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the event loop that uses it (a session belongs to one loop).
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=KEEPALIVE_SECONDS)
            # Proxies come from the environment, looked up once per host (see _proxy) rather than
            # on every request as trust_env would.
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout,
                                                  connector=connector)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
    ) -> HttpResponse:
        """Send a request; raise TransientError/RateLimited, return any other response as is.

        4xx answers other than 429 are returned: what they mean is the connector's business.
        """
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        kwargs: dict[str, Any] = {"params": _query(params), "headers": dict(headers) if headers else None}
        if json is not None:
            kwargs["json"] = json
        elif content is not None:
            kwargs["data"] = content.encode() if isinstance(content, str) else content
        # The first attempt goes without the retry machinery, which costs more CPU than the call
        # itself on a fast API and is almost never needed; after a retryable failure, tenacity
        # makes the other attempts.
        try:
            return await self._send_once(method, url, idempotent, kwargs)
        except Exception as exc:
            if self.attempts <= 1 or not _retryable(exc):
                raise
            await asyncio.sleep(self._delay(exc, 1))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts - 1),
            wait=lambda state: self._delay(state.outcome.exception() if state.outcome else None,
                                           state.attempt_number + 1),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(method, url, idempotent, kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, exc: BaseException | None, failed: int) -> float:
        """The pause after the ``failed``-th attempt: the server's Retry-After, else backoff with jitter."""
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(float(after), self.max_wait)
        state = RetryCallState(self._retry_kind, None, (), {})
        state.attempt_number = failed
        return float(self._backoff(state))

    def _proxy(self, url: str) -> str | None:
        """The proxy for this URL from HTTP(S)_PROXY / NO_PROXY, remembered per scheme and host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            bypass = not key[1] or urllib.request.proxy_bypass(key[1])
            self._proxies[key] = None if bypass else urllib.request.getproxies().get(key[0])
        return self._proxies[key]

    def _url(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return f"{self.base_url}/{url.lstrip('/')}" if url else self.base_url

    async def _send_once(self, method: str, url: str, idempotent: bool, kwargs: dict[str, Any]) -> HttpResponse:
        await self.budget.acquire(self.account_key, self.rate)
        self.calls += 1
        started = time.perf_counter()
        try:
            target = self._url(url)
            async with self._open().request(method, target, proxy=self._proxy(target), **kwargs) as answer:
                body = await answer.read()
                resp = HttpResponse(answer.status, answer.headers, body, answer.charset, str(answer.url))
        except aiohttp.ClientConnectorError as exc:
            # Refused or unreachable: the server surely did not act, so even a write is retried.
            raise TransientError(f"cannot connect to {self.base_url}: {exc}") from exc
        except TimeoutError as exc:
            err = TransientError(f"{method} {url} timed out at {self.base_url}")
            # A timed-out write may have been applied: let the engine resolve it by lookup.
            err.in_call_retry = idempotent  # type: ignore[attr-defined]
            raise err from exc
        except aiohttp.ClientError as exc:
            err = TransientError(f"{method} {url} failed at {self.base_url}: {type(exc).__name__}: {exc}")
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
