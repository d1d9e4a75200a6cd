"""Holded Invoice API v1 on the wire: the ``key`` header, envelopes, ``?page=N`` paging, errors.

Holded answers many refusals with HTTP 200 and ``{"status": 0, "info": "..."}``, and unknown
routes with its HTML 404 page on HTTP 200, so every answer is inspected before it is trusted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlparse

from orderbridge.connectors.errors import (
    AuthError,
    ConfigError,
    DataError,
    NotFound,
    RateLimited,
    TransientError,
)
from orderbridge.connectors.http import ApiClient, HttpResponse, parse_retry_after

API_PATH = "/api/invoicing/v1"
MAX_PAGES = 10_000


def _looks_html(text: str) -> bool:
    head = text.lstrip()[:100].lower()
    return head.startswith("<!doctype html") or head.startswith("<html")


def _is_refusal(body: Any) -> bool:
    """``{"status": 0, "info": ...}``; a document also has ``status`` (0 = unpaid) but has an id."""
    if not isinstance(body, dict) or "id" in body:
        return False
    status = body.get("status")
    if status in (0, "0", False) and ("info" in body or "message" in body or "msg" in body):
        return True
    return status in (401, 403, 429) and len(body) <= 2


def refusal_error(info: str, what: str, *, status: Any = 0, retry_after: float | None = None) -> Exception:
    """Classify a Holded refusal into the connector error taxonomy."""
    text = info.lower()
    if status in (401, 403) or "api key" in text or "invalid key" in text or "unauthori" in text:
        return AuthError(f"Holded refused the API key ({info or status})",
                         fix="create an API key in Holded > Settings > Developers and update the credentials")
    if status == 429 or "too many" in text or "rate limit" in text:
        return RateLimited(f"Holded is rate limiting us ({info or status})", retry_after=retry_after)
    if "not found" in text:
        return NotFound(f"Holded: {info} ({what})", detail=info)
    return DataError(f"Holded refused {what}: {info}", fix="correct what Holded names, then retry the order",
                     detail=info)


class HoldedClient:
    def __init__(self, http: ApiClient, api_key: str, base_url: str) -> None:
        self.http = http
        self.headers = {"key": api_key, "Accept": "application/json"}
        # A bare host (a sandbox URL) gets the API's own path.
        self.prefix = "" if urlparse(base_url).path.strip("/") else API_PATH

    async def call(self, method: str, path: str, what: str, *, params: Mapping[str, Any] | None = None,
                   body: Mapping[str, Any] | None = None, idempotent: bool | None = None) -> Any:
        kwargs: dict[str, Any] = {"headers": self.headers}
        if params:
            kwargs["params"] = params
        if body is not None:
            kwargs["content"] = json.dumps(body)
            kwargs["headers"] = {**self.headers, "Content-Type": "application/json"}
        resp = await self.http.request(method, self.prefix + path, idempotent=idempotent, **kwargs)
        return self._interpret(resp, what)

    def _interpret(self, resp: HttpResponse, what: str) -> Any:
        text = resp.text
        if resp.status_code in (401, 403):
            raise refusal_error(_info_of(text), what, status=resp.status_code)
        if _looks_html(text):
            raise ConfigError(
                f"Holded answered a web page instead of data for {what} (HTTP {resp.status_code})",
                fix=f"check the connection's base URL (Holded's is https://api.holded.com{API_PATH})",
            )
        body: Any
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            # A truncated or garbled answer: the request may have been applied, so retry via lookup.
            raise TransientError(f"Holded sent an unreadable answer to {what}", detail=text[:200]) from None
        if _is_refusal(body):
            raise refusal_error(str(body.get("info") or body.get("message") or body.get("msg") or ""), what,
                                status=body.get("status"),
                                retry_after=parse_retry_after(resp.headers.get("Retry-After")))
        if resp.status_code == 404:
            raise NotFound(f"Holded has no such record ({what})")
        if resp.status_code >= 400:
            raise DataError(f"Holded refused {what} (HTTP {resp.status_code})", detail=text[:500],
                            fix="correct the data Holded names, then retry the order")
        return body

    async def pages(self, path: str, what: str, params: Mapping[str, Any] | None = None
                    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a v1 list: ``?page=1, 2, ...`` until an empty array."""
        first_ids: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            rows = await self.call("GET", path, what, params={**(params or {}), "page": page})
            if not isinstance(rows, list):
                raise TransientError(f"Holded answered {what} with something other than a list")
            if not rows:
                return
            marker = str(rows[0].get("id", "")) if isinstance(rows[0], dict) else ""
            if marker and marker in first_ids:
                return  # the API ignored ?page and repeats itself
            first_ids.add(marker)
            for row in rows:
                if isinstance(row, dict):
                    yield row

    # --------------------------------------------------------------------------- endpoints
    def documents(self, doc_type: str, start: int, end: int, *, drafts: bool = False
                  ) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"starttmp": start, "endtmp": end}
        if drafts:
            params["filter"] = "approved-0"
        return self.pages(f"/documents/{doc_type}", f"the list of {doc_type} documents", params)

    async def document(self, doc_type: str, doc_id: str) -> Any:
        return await self.call("GET", f"/documents/{doc_type}/{doc_id}", f"{doc_type} {doc_id}")

    async def create_document(self, doc_type: str, body: Mapping[str, Any]) -> str:
        reply = await self.call("POST", f"/documents/{doc_type}", f"the new {doc_type}", body=body, idempotent=False)
        return _new_id(reply, f"the new {doc_type}")

    async def pay(self, doc_type: str, doc_id: str, body: Mapping[str, Any]) -> Any:
        return await self.call("POST", f"/documents/{doc_type}/{doc_id}/pay", f"the payment of {doc_type} {doc_id}",
                               body=body, idempotent=False)

    async def delete_document(self, doc_type: str, doc_id: str) -> Any:
        return await self.call("DELETE", f"/documents/{doc_type}/{doc_id}", f"deleting {doc_type} {doc_id}")

    async def shipped_items(self, doc_type: str, doc_id: str) -> Any:
        return await self.call("GET", f"/documents/{doc_type}/{doc_id}/shippeditems",
                               f"the shipped units of {doc_type} {doc_id}")

    async def contacts_with_custom_id(self, custom_id: str) -> Any:
        return await self.call("GET", "/contacts", "the contact search", params={"customId[]": custom_id})

    def contacts(self) -> AsyncIterator[dict[str, Any]]:
        return self.pages("/contacts", "the list of contacts")

    async def contact(self, contact_id: str) -> Any:
        return await self.call("GET", f"/contacts/{contact_id}", f"contact {contact_id}")

    async def create_contact(self, body: Mapping[str, Any]) -> str:
        reply = await self.call("POST", "/contacts", "the new contact", body=body, idempotent=False)
        return _new_id(reply, "the new contact")

    def products(self) -> AsyncIterator[dict[str, Any]]:
        return self.pages("/products", "the list of products")

    async def warehouses(self) -> Any:
        return await self.call("GET", "/warehouses", "the list of warehouses")

    async def warehouse_stock(self, warehouse_id: str) -> Any:
        return await self.call("GET", f"/warehouses/{warehouse_id}/stock", f"the stock of warehouse {warehouse_id}")

    async def numbering_series(self, series_type: str) -> Any:
        return await self.call("GET", f"/numberingseries/{series_type}", f"the {series_type} numbering series")

    async def sales_channels(self) -> Any:
        return await self.call("GET", "/saleschannels", "the list of sales channels")


def _info_of(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return ""
    return str(body.get("info") or "") if isinstance(body, dict) else ""


def _new_id(reply: Any, what: str) -> str:
    if isinstance(reply, list) and reply:  # seen once in the wild: the reply wrapped in an array
        reply = reply[0]
    if isinstance(reply, dict) and reply.get("id"):
        return str(reply["id"])
    raise TransientError(f"Holded accepted {what} but sent no id back", detail=str(reply)[:200])
