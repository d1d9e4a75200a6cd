"""The Houzz wire: one gateway, three auth headers, the Ack envelope, Start/NumberOfItems paging.

Reads are GET ``/api?format=json|xml&method=...``; writes are POST ``/api?format=xml&method=...``
with a raw XML document. Success or failure is read from ``Ack`` (never from the HTTP status
alone); every failure leaves here as an error of the connector taxonomy, carrying Houzz's
ErrorCode in ``code`` so the connector can tell an InvalidStateTransition from a SkuNotFound.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, tzinfo
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from orderbridge import json_codec
from orderbridge.connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    DataError,
    NotFound,
    RateLimited,
    TransientError,
)
from orderbridge.connectors.http import ApiClient, HttpResponse, parse_retry_after

PATH = "/api"
PAGE_SIZE = 1000
MAX_PAGES = 10_000  # a guard against a gateway that never reports the end
READ_ATTEMPTS = 3  # reads whose body arrives unreadable are simply asked again
LIST_CONTAINERS = {"Orders", "OrderItems", "Listings", "Errors", "Payments"}
CREDENTIALS_FIX = "copy the Application ID, Username and Application Token again from Seller Central > Settings > API"


def _xml_to_data(el: ET.Element) -> Any:
    children = list(el)
    if el.tag in LIST_CONTAINERS:
        return [_xml_to_data(c) for c in children]
    if not children:
        return (el.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _xml_to_data(child)
        if child.tag in out:  # a repeated element is a list even without a known container
            prev = out[child.tag]
            out[child.tag] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[child.tag] = value
    return out


def parse_body(text: bytes, fmt: str) -> dict[str, Any]:
    """A response body as a dict; ValueError when it cannot be read."""
    if fmt == "json":
        data = json_codec.loads(text)
    else:
        if re.search(rb"<!\s*(DOCTYPE|ENTITY)", text, re.IGNORECASE):
            raise ValueError("the XML carries a document type declaration")
        try:
            data = _xml_to_data(ET.fromstring(text))
        except ET.ParseError as exc:
            raise ValueError(str(exc)) from None
    if not isinstance(data, dict) or "Ack" not in data:
        raise ValueError("no Ack in the response")
    return data


def as_list(value: Any) -> list[Any]:
    """Houzz lists arrive as arrays (JSON), wrapped elements (XML), one object, or empty text."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    return []


def first_error(data: Mapping[str, Any]) -> tuple[str, str]:
    """(ErrorCode, message) from an Errors blob of any shape."""
    errors = data.get("Errors")
    items = as_list(errors)
    if items and isinstance(items[0], dict):
        first = items[0]
        code = str(first.get("ErrorCode") or first.get("Code") or "")
        message = str(first.get("LongMessage") or first.get("ShortMessage") or first.get("Message") or "")
        return code, message or json.dumps(first, default=str)[:300]
    return "", str(errors or "Houzz answered Ack=Error without details")[:300]


def wire_time(when: datetime, tz: tzinfo) -> str:
    """A UTC datetime as Houzz's From/To value, in the account's time zone."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def xml_document(root: str, fields: list[tuple[str, str]]) -> bytes:
    """A request body: ``<root><Name>value</Name>...</root>``, values escaped as XML text. Written
    out directly (the element names are the client's own): ElementTree's serializer took ten times
    as long for these few flat fields, on every write."""
    body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields)
    return f"<{root}>{body}</{root}>".encode()


class HouzzClient:
    def __init__(self, http: ApiClient, *, app_id: str, username: str, token: str, read_format: str = "json") -> None:
        self.http = http
        self.read_format = read_format
        self.headers = {
            "X-HOUZZ-API-APP-NAME": app_id,
            "X-HOUZZ-API-USER-NAME": username,
            "X-HOUZZ-API-SSL-TOKEN": token,
        }
        self.get_order_supported = True

    # ------------------------------------------------------------------------- transport
    async def read(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        query = {"format": self.read_format, "method": method, **{k: str(v) for k, v in (params or {}).items()}}
        last = ""
        for _ in range(READ_ATTEMPTS):
            resp = await self.http.request("GET", PATH, params=query, headers=self.headers)
            data = self._decode(resp, self.read_format)
            if data is not None:
                return self._check(resp, data)
            last = resp.text[:200]
        raise TransientError(f"Houzz answered {method} with an unreadable body", detail=last)

    async def write(self, method: str, root: str, fields: list[tuple[str, str]], *,
                    idempotent: bool) -> dict[str, Any]:
        resp = await self.http.request(
            "POST", PATH, params={"format": "xml", "method": method}, headers={
                **self.headers, "Content-Type": "text/xml"},
            content=xml_document(root, fields), idempotent=idempotent,
        )
        data = self._decode(resp, "xml")
        if data is None:
            raise TransientError(f"Houzz answered {method} with an unreadable body; it may or may not have "
                                 "been applied", detail=resp.text[:200])
        return self._check(resp, data)

    def _decode(self, resp: HttpResponse, fmt: str) -> dict[str, Any] | None:
        try:
            return parse_body(resp.content, fmt)
        except ValueError:
            if resp.status_code in (401, 403):
                raise AuthError(f"Houzz refused the credentials (HTTP {resp.status_code})",
                                fix=CREDENTIALS_FIX) from None
            if resp.status_code == 404:
                raise ConfigError("the Houzz API address answered 404",
                                  fix="check the connection's base URL (https://api.houzz.com)") from None
            if 400 <= resp.status_code < 500:
                raise DataError(f"Houzz refused the request (HTTP {resp.status_code})",
                                detail=resp.text[:500]) from None
            return None

    def _check(self, resp: HttpResponse, data: dict[str, Any]) -> dict[str, Any]:
        if str(data.get("Ack", "")).lower() == "success" and resp.status_code < 400:
            return data
        code, message = first_error(data)
        raise error_for(code, message, resp, data)

    # ---------------------------------------------------------------------------- orders
    async def iter_orders(self, status: str, since: datetime | None, until: datetime | None,
                          tz: tzinfo) -> AsyncIterator[dict[str, Any]]:
        """Every order getOrders returns for this filter, page by page until the reported total."""
        params: dict[str, Any] = {"Status": status}
        if since is not None:
            params["From"] = wire_time(since, tz)
        if until is not None:
            params["To"] = wire_time(until, tz)
        start = 0
        for _ in range(MAX_PAGES):
            data = await self.read("getOrders", {**params, "Start": start, "NumberOfItems": PAGE_SIZE})
            page = as_list(data.get("Orders"))
            total = _int_or_none(data.get("TotalOrderCount"))
            size = len(page)
            del data  # a page of 1,000 orders is megabytes of objects: hold one page at a time, not two
            page.reverse()
            while page:
                yield page.pop()  # in the page's order; each entry let go once consumed
            start += size
            # A page may be shorter than asked (the gateway caps page sizes): trust the total.
            if not size or (start >= total if total is not None else size < PAGE_SIZE):
                return

    async def get_order(self, order_id: str, *, tz: tzinfo, search_from: datetime | None = None) -> dict[str, Any]:
        """One order; NotFound when Houzz has none. Falls back to a search when getOrder is missing."""
        if self.get_order_supported:
            try:
                data = await self.read("getOrder", {"OrderId": order_id})
            except ConfigError as exc:
                if exc.code != "UnknownMethod":
                    raise
                self.get_order_supported = False
            else:
                found = data.get("Order")
                if isinstance(found, dict):
                    return found
                listed = as_list(data.get("Orders"))
                if listed and isinstance(listed[0], dict):
                    return dict(listed[0])
                raise NotFound(f"Houzz has no order {order_id}", code="OrderNotFound")
        async for raw in self.iter_orders("All", search_from, None, tz):
            if isinstance(raw, dict) and str(raw.get("OrderId", "")).strip() == order_id:
                return raw
        raise NotFound(f"Houzz has no order {order_id}", code="OrderNotFound")

    async def update_order(self, order_id: str, action: str, *extra: tuple[str, str]) -> dict[str, Any]:
        # Process/Charge/Ship are safe to repeat at Houzz (a no-op or the same result), but a
        # timed-out Charge is resolved by the connector's state check rather than a blind resend.
        return await self.write("updateOrder", "UpdateOrderRequest",
                                [("OrderId", order_id), ("Action", action), *extra], idempotent=False)

    # ------------------------------------------------------------------------- inventory
    async def update_inventory(self, sku: str, quantity: int) -> dict[str, Any]:
        # Setting an absolute quantity twice is harmless: retry freely.
        return await self.write("updateInventory", "UpdateInventoryRequest",
                                [("SKU", sku), ("Action", "update"), ("Quantity", str(quantity))], idempotent=True)

    async def first_listing(self) -> dict[str, Any]:
        return await self.read("getListings", {"Status": "All", "Start": 0, "NumberOfItems": 1})


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def error_for(code: str, message: str, resp: HttpResponse, data: Mapping[str, Any]) -> ConnectorError:
    """Houzz's ErrorCode (or HTTP status) as an error of the taxonomy."""
    detail = json.dumps(data.get("Errors"), default=str)[:1000]
    text = message or f"Houzz answered Ack=Error (HTTP {resp.status_code})"
    if code == "RateLimited" or resp.status_code == 429:
        return RateLimited(f"Houzz is rate limiting us: {text}",
                           retry_after=parse_retry_after(resp.headers.get("Retry-After")))
    if code == "InvalidCredentials" or (not code and resp.status_code == 401):
        return AuthError(f"Houzz refused the credentials: {text}", fix=CREDENTIALS_FIX, code="InvalidCredentials",
                         detail=detail)
    if code == "PermissionDenied" or (not code and resp.status_code == 403):
        return AuthError(f"Houzz refused the call: {text}", code="PermissionDenied", detail=detail,
                         fix="in Seller Central > Settings > API tick 'List and process orders' and 'Update "
                             "product inventory', then Complete Registration")
    if code in ("InternalError", "ServiceUnavailable") or resp.status_code >= 500:
        return TransientError(f"Houzz had an internal error: {text}", detail=detail)
    if code == "OrderNotFound":
        return NotFound(text, code=code, detail=detail)
    if code == "UnknownMethod":
        return ConfigError(f"the Houzz gateway does not know this method: {text}", code=code, detail=detail,
                           fix="check the connection's base URL")
    return DataError(text, code=code or f"HTTP{resp.status_code}", detail=detail)
