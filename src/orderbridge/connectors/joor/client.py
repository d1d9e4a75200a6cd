"""The JOOR v2 wire: the ``OAuth2 <base64 token>`` header, ``GET /v2/orders`` with its paging and
``sync`` flag, and ``POST /v2/bulk-inventory``.

Every failure leaves here as an error of the connector taxonomy; JOOR's message (its ``errors``
list, or whatever text it sent) is carried in the error so the merchant reads JOOR's own words.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from orderbridge.connectors.errors import AuthError, ConfigError, DataError, TransientError
from orderbridge.connectors.http import ApiClient, HttpResponse

PRODUCTION_URL = "https://api.jooraccess.com"
SANDBOX_URL = "https://apisandbox.jooraccess.com"
ORDERS_PATH = "/v2/orders"
INVENTORY_PATH = "/v2/bulk-inventory"
DEFAULT_PAGE_SIZE = 50  # JOOR's own page size
MAX_PAGES = 10_000  # a guard against a server that never reports the end
READ_ATTEMPTS = 3  # a read whose body arrives unreadable is simply asked again
TOKEN_FIX = ("copy the v2 API token again from JOOR (your JOOR integration manager issues it); the production "
             "and sandbox environments have different tokens, so check the connection's Test Mode too")

# order_type codes of GET /v2/orders
ORDER_TYPE_NOTES, ORDER_TYPE_APPROVED_SHIPPED, ORDER_TYPE_PENDING, ORDER_TYPE_ALL_BUT_CANCELLED = 1, 2, 3, 4
ORDER_TYPE_CANCELLED, ORDER_TYPE_APPROVED, ORDER_TYPE_SHIPPED, ORDER_TYPE_ALL = 5, 6, 7, 8
# export_status codes
EXPORT_ALL, EXPORT_NOT_YET, EXPORT_DONE = 1, 2, 3


def auth_header(token: str) -> str:
    """JOOR v2 wants the token Base64-encoded after the word OAuth2."""
    return "OAuth2 " + base64.b64encode(token.strip().encode()).decode()


def wire_time(when: datetime) -> str:
    """A datetime as JOOR's UTC timestamp, ``YYYY-MM-DDThh:mm:ss.sTZD``."""
    value = when.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def joor_message(resp: HttpResponse) -> str:
    """JOOR's explanation of a refusal, from whatever body it sent."""
    try:
        data = resp.json()
    except (ValueError, RecursionError):
        return resp.text.strip()[:300]
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts = [str(e.get("message") or e) if isinstance(e, dict) else str(e) for e in errors[:5]]
            return "; ".join(parts)[:500]
        for key in ("message", "error", "detail"):
            if data.get(key):
                return str(data[key])[:500]
    return json.dumps(data, default=str)[:300]


def order_key(raw: Any) -> str:
    """The order id of a list entry (for de-duplication while paging); empty when it has none."""
    if isinstance(raw, dict) and isinstance(raw.get("order_id"), str | int) and not isinstance(
            raw.get("order_id"), bool):
        return str(raw["order_id"]).strip()
    return ""


class JoorClient:
    def __init__(self, http: ApiClient, token: str, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.http = http
        self.page_size = page_size
        self.headers = {"Authorization": auth_header(token), "Accept": "application/json"}

    # ------------------------------------------------------------------------- transport
    def _raise_for(self, resp: HttpResponse, what: str) -> None:
        """Turn a refusal into an error of the taxonomy (5xx and 429 never get here)."""
        if resp.status_code < 400:
            return
        message = joor_message(resp) or f"HTTP {resp.status_code}"
        if resp.status_code == 401:
            raise AuthError(f"JOOR refused the API token while trying to {what}: {message}", fix=TOKEN_FIX,
                            code="InvalidToken", detail=resp.text[:500])
        if resp.status_code == 403:
            raise AuthError(f"JOOR does not let this API token {what}: {message}", code="Forbidden",
                            fix="ask your JOOR integration manager to enable API access for the account",
                            detail=resp.text[:500])
        if resp.status_code == 404:
            raise ConfigError(f"the JOOR API address answered 404 for {resp.path}",
                              fix="check the connection's base_url (or production_url / sandbox_url); JOOR's "
                                  f"hosts are {PRODUCTION_URL} and {SANDBOX_URL}", code="NotFound")
        raise DataError(f"JOOR refused the request to {what}: {message}", code=f"HTTP{resp.status_code}",
                        detail=resp.text[:500])

    async def read_orders(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of GET /v2/orders, as JOOR sent it."""
        last = ""
        for _ in range(READ_ATTEMPTS):
            resp = await self.http.request("GET", ORDERS_PATH, params={k: str(v) for k, v in params.items()},
                                           headers=self.headers)
            self._raise_for(resp, "read orders")
            try:
                data = resp.json()
            except (ValueError, RecursionError):  # RecursionError: a body nested too deeply to parse
                data = None
            if isinstance(data, dict) and isinstance(data.get("orders"), list):
                return data
            last = resp.text[:200]
        raise TransientError("JOOR answered GET /v2/orders with an unreadable body", detail=last)

    # ---------------------------------------------------------------------------- orders
    async def iter_orders(self, params: Mapping[str, Any], *, sync: bool) -> AsyncIterator[Any]:
        """Every order GET /v2/orders returns for these filters, page by page, each once.

        With ``sync=1`` JOOR marks each order it returns as exported, and a marked order no longer
        matches the default export_status: the result set shrinks under the reader, so the next
        batch is always read from the start (an offset would skip orders). With ``sync=0`` the set
        is stable and pages follow ``next_start_from`` (or the offset) to the reported total.
        """
        base = {**params, "sync": 1 if sync else 0, "count": self.page_size}
        start = 0
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            data = await self.read_orders({**base, "start_from": start})
            page: list[Any] = data["orders"]
            fresh = 0
            for raw in page:
                key = order_key(raw)
                if key and key in seen:
                    continue
                if key:
                    seen.add(key)
                fresh += 1
                yield raw
            if not page or fresh == 0:
                return  # the end, or a server repeating itself: stop rather than loop
            if sync:
                if len(page) < self.page_size:
                    return
                continue
            start = _next_start(data, start, len(page), self.page_size)
            if start < 0:
                return

    # ------------------------------------------------------------------------- inventory
    async def bulk_inventory(self, items: list[dict[str, Any]], *, dec_pending: bool) -> list[dict[str, Any]]:
        """Send absolute stock levels; return JOOR's inventory_log (one entry per item, pass or fail).

        ``overwrite=1`` is never sent: it would zero every SKU of the account not in this batch.
        Absolute values make a repeat harmless, so a timed-out push is simply retried.
        """
        resp = await self.http.request(
            "POST", INVENTORY_PATH, params={"dec_pending": "1" if dec_pending else "0"},
            headers={**self.headers, "Content-Type": "application/json"},
            json={"inventory_items": {"inventory_item": items}}, idempotent=True,
        )
        self._raise_for(resp, "update inventory")
        try:
            data = resp.json()
        except (ValueError, RecursionError):  # RecursionError: a body nested too deeply to parse
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("inventory_log"), list):
            raise TransientError("JOOR answered the inventory update with an unreadable body; it is sent again",
                                 detail=resp.text[:200])
        return [e if isinstance(e, dict) else {"status": "fail", "message": str(e)} for e in data["inventory_log"]]


def _next_start(data: Mapping[str, Any], start: int, got: int, page_size: int) -> int:
    """Where the next sync=0 page starts, or -1 at the end."""
    if "next_start_from" in data:
        nxt = data.get("next_start_from")
        if nxt in (None, "", False):
            return -1
        try:
            value = int(str(nxt))
        except ValueError:
            value = start + got
        return value if value > start else -1
    total = _int_or_none(data.get("total"))
    start += got
    if total is not None:
        return start if start < total else -1
    return start if got >= page_size else -1


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None
