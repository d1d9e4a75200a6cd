"""The TradeGecko wire: bearer auth with rotating refresh tokens, root-key envelopes, paging, errors.

Only this module knows HTTP. Everything it returns is plain JSON data; everything it raises is
from the connector error taxonomy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orderbridge import json_codec
from orderbridge.connectors.errors import (
    AuthError,
    DataError,
    NotFound,
    RateLimited,
    TransientError,
)
from orderbridge.connectors.http import ApiClient, HttpResponse
from orderbridge.logs import register_secret

log = logging.getLogger("orderbridge.connectors.tradegecko")

PAGE_LIMIT = 250  # the API's maximum page size
REFRESH_MARGIN = 60.0  # refresh an OAuth token this long before it expires
MAX_RATE_WAIT = 15.0  # wait in-call for the rate window to reset when it is this close
RATE_WAITS = 3  # windows waited out in-call before the engine is told to come back later
MALFORMED_RETRIES = 2


@dataclass
class Tokens:
    """The credentials in force; the refresh token changes at every refresh."""

    access_token: str
    refresh_token: str = ""
    client_id: str = ""
    client_secret: str = ""
    expires_at: float | None = None
    rotated: bool = False  # a refresh happened that the engine has not stored yet

    @property
    def can_refresh(self) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret)

    def as_credentials(self) -> dict[str, str]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "client_id": self.client_id, "client_secret": self.client_secret}


@dataclass
class Reply:
    status: int
    data: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def one(self, root: str) -> dict[str, Any]:
        """The record under its singular root key (other keys may be sideloaded next to it)."""
        value = self.data.get(root)
        if not isinstance(value, dict):
            raise TransientError(f"TradeGecko answered without {root!r}", detail=str(self.data)[:300])
        return value

    def many(self, root: str) -> list[dict[str, Any]]:
        value = self.data.get(root)
        if not isinstance(value, list):
            raise TransientError(f"TradeGecko answered without a {root!r} list", detail=str(self.data)[:300])
        return [v for v in value if isinstance(v, dict)]


def error_text(data: Any, fallback: str) -> str:
    """The API's own words: 422 ``{"errors": {field: [msg]}}``, or ``{"type", "message"}``."""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, dict) and errors:
            parts = []
            for key, msgs in errors.items():
                for msg in msgs if isinstance(msgs, list) else [msgs]:
                    parts.append(f"{key} {msg}" if key != "base" else str(msg))
            return "; ".join(parts)
        if data.get("message"):
            return str(data["message"])
        if data.get("error_description"):
            return str(data["error_description"])
    return fallback


ID_BATCH = 100  # ids per `ids=` filter: keeps URLs well under common limits


class TradeGeckoClient:
    def __init__(self, http: ApiClient, tokens: Tokens, product: str = "TradeGecko") -> None:
        self.http = http
        self.tokens = tokens
        self.product = product
        self.reset_at: float | None = None  # end of the current rate window, from X-Rate-Limit-Reset
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------------ requests
    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Reply:
        return await self.call("GET", path, params=params)

    async def by_ids(self, resource: str, ids: list[int], **params: Any) -> list[dict[str, Any]]:
        """Records of ``resource`` with these ids, fetched ``ids=`` batch by batch (100 per call)."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), ID_BATCH):
            batch = ids[start:start + ID_BATCH]
            reply = await self.get(f"/{resource}", {"ids": ",".join(map(str, batch)), "limit": 250, **params})
            out.extend(reply.many(resource))
        return out

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str = "",
        what: str = "the request",
    ) -> Reply:
        """One API call, authenticated (refreshing the token once on 401) and classified."""
        # A POST with an Idempotency-Key is safe to repeat: the API performs it once.
        safe = method != "POST" or bool(idempotency_key)
        refreshed = False
        malformed = 0
        while True:
            await self._fresh_token()
            used = self.tokens.access_token
            resp = await self._send(method, path, params, body, idempotency_key, safe)
            if resp.status_code == 401 and self.tokens.can_refresh and not refreshed:
                await self.refresh(failed_token=used)
                refreshed = True
                continue
            if resp.status_code >= 400:
                raise self._error(resp, what)
            try:
                data = resp.json() if resp.content.strip() else {}
            except ValueError:
                malformed += 1
                if safe and malformed <= MALFORMED_RETRIES:
                    continue
                raise TransientError(f"{self.product} sent an unreadable answer to {method} {path}",
                                     detail=resp.text[:300]) from None
            if not isinstance(data, dict):
                raise TransientError(f"{self.product} sent an unexpected answer to {method} {path}")
            return Reply(resp.status_code, data, resp.headers)

    async def _send(
        self, method: str, path: str, params: Mapping[str, Any] | None, body: Mapping[str, Any] | None,
        idempotency_key: str, safe: bool,
    ) -> HttpResponse:
        headers = {"Authorization": f"Bearer {self.tokens.access_token}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        kwargs: dict[str, Any] = {"headers": headers, "params": _query(params)}
        if body is not None:
            kwargs["content"] = json_codec.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(RATE_WAITS + 1):
            try:
                resp = await self.http.request(method, path, idempotent=safe, **kwargs)
            except RateLimited as exc:
                # The 429 carries no Retry-After; the window's end is known from earlier answers
                # (when that end has passed, a newer window is full too: back off a little).
                wait = self._until_reset()
                if attempt < RATE_WAITS and wait is not None and wait <= MAX_RATE_WAIT:
                    await asyncio.sleep(max(wait + 0.05, 0.25 * (attempt + 1)))
                    continue
                if exc.retry_after is None and wait:
                    exc.retry_after = wait
                raise
            self._note_rate(resp)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _until_reset(self) -> float | None:
        return None if self.reset_at is None else max(0.0, self.reset_at - time.time())

    def _note_rate(self, resp: HttpResponse) -> None:
        reset = resp.headers.get("X-Rate-Limit-Reset")
        if reset and reset.strip().isdigit():
            self.reset_at = float(reset)

    def _error(self, resp: HttpResponse, what: str) -> Exception:
        try:
            data = resp.json()
        except ValueError:
            data = None
        status = resp.status_code
        text = error_text(data, resp.text[:200] or f"HTTP {status}")
        p = self.product
        if status == 401:
            return AuthError(f"{p} refused the access token ({text})",
                             fix=f"create a new Privileged Access Token in {p} and paste it in the connection's "
                                 "credentials, or reconnect the OAuth application")
        if status == 402:
            return AuthError(f"The {p} subscription has lapsed (HTTP 402)",
                             fix=f"renew the {p} plan; API access needs a plan that includes it")
        if status == 403:
            return AuthError(f"The {p} user behind this token may not do {what} ({text})",
                             fix=f"give that user the permission in {p}, or use a token of an admin user")
        if status == 404:
            return NotFound(f"{p} has no such record ({text})")
        if status == 422:
            return DataError(f"{p} rejected {what}: {text}",
                             fix="correct what it names (in the order or in the connection's settings); "
                                 "the order is retried after the fix", code="rejected")
        if status in (400, 409, 414):
            return DataError(f"{p} refused {what} as malformed: {text}",
                             fix="check the connection's settings; if they are right, report this to "
                                 "orderbridge", code="bad_request")
        return TransientError(f"{p} answered HTTP {status} to {what}", detail=text)

    # -------------------------------------------------------------------------- paging
    async def pages(
        self, path: str, params: Mapping[str, Any] | None = None, root: str = ""
    ) -> AsyncIterator[Reply]:
        """Every page of a collection, until X-Pagination says it was the last one."""
        root = root or path.strip("/").split("/")[-1]
        page = 1
        while True:
            reply = await self.get(path, {**(params or {}), "limit": PAGE_LIMIT, "page": page})
            records = reply.many(root)
            yield reply
            meta = _pagination(reply.headers)
            if not records or len(records) < PAGE_LIMIT or meta.get("last_page") is True:
                return
            page += 1

    # ---------------------------------------------------------------------------- auth
    def _refresh_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _fresh_token(self) -> None:
        t = self.tokens
        if not t.can_refresh:
            return
        if not t.access_token or (t.expires_at is not None and time.time() > t.expires_at - REFRESH_MARGIN):
            await self.refresh(failed_token=t.access_token)

    async def refresh(self, failed_token: str) -> None:
        """Trade the refresh token for a new pair; concurrent callers share one refresh."""
        async with self._refresh_lock():
            t = self.tokens
            if t.access_token != failed_token:
                return  # another task refreshed while we waited
            body = {"grant_type": "refresh_token", "refresh_token": t.refresh_token,
                    "client_id": t.client_id, "client_secret": t.client_secret}
            resp = await self.http.request(
                "POST", "/oauth/token", json=body, headers={"Accept": "application/json"}, idempotent=True
            )
            try:
                data = resp.json()
            except ValueError:
                data = None
            if resp.status_code >= 400 or not isinstance(data, dict) or not data.get("access_token"):
                if resp.status_code < 400:
                    raise TransientError(f"{self.product} sent an unreadable token answer")
                raise AuthError(
                    f"{self.product} refused to refresh the access token "
                    f"({error_text(data, f'HTTP {resp.status_code}')})",
                    fix=f"connect orderbridge to {self.product} again (authorize the app) or use a Privileged "
                        "Access Token",
                )
            t.access_token = str(data["access_token"])
            t.refresh_token = str(data.get("refresh_token") or t.refresh_token)
            expires_in = data.get("expires_in")
            t.expires_at = time.time() + float(expires_in) if isinstance(expires_in, int | float) else None
            t.rotated = True
            register_secret(t.access_token)
            register_secret(t.refresh_token)
            log.info("%s access token refreshed", self.product)


def _query(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Lists become ``key[]=a&key[]=b``, as the API reads arrays."""
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set):
            out += [(f"{key}[]", str(v)) for v in value]
        else:
            out.append((key, str(value)))
    return out


def _pagination(headers: Mapping[str, str]) -> dict[str, Any]:
    try:
        meta = json.loads(headers.get("X-Pagination") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}
