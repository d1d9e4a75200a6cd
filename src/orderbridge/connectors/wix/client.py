"""The Wix wire: API-key auth headers, Wix's error bodies -> the error taxonomy, cursor and offset
paging, and verification of webhook JWTs. No field translation happens here (see mapping.py)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from orderbridge.connectors.errors import (
    AuthError,
    ConfigError,
    DataError,
    NotFound,
    TransientError,
)
from orderbridge.connectors.http import ApiClient, HttpResponse

ORDERS_PAGE = 100  # Search Orders' maximum
PRODUCTS_PAGE = 100
KEY_FIX = ("create an API key in Wix's API Keys Manager (as the site owner) with the eCommerce and Stores "
           "permissions, and paste it into this connection")
SITE_FIX = "copy the site ID from the site's dashboard URL (the part after /dashboard/)"


def wix_error(body: Any) -> tuple[str, str]:
    """(message, code) from ``{message, details: {applicationError | validationError}}``."""
    if not isinstance(body, dict):
        return "", ""
    message = str(body.get("message") or "")
    details = _obj(body.get("details"))
    app = _obj(details.get("applicationError"))
    code = str(app.get("code") or "")
    violations = _obj(details.get("validationError")).get("fieldViolations")
    if isinstance(violations, list) and violations:
        parts = [f"{v.get('field', '?')}: {v.get('description', '')}" for v in violations if isinstance(v, dict)]
        message = "; ".join(parts) or message
        code = code or "VALIDATION_ERROR"
    return message or str(app.get("description") or ""), code


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _decode(resp: HttpResponse) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def raise_for(resp: HttpResponse, what: str) -> None:
    """Turn a Wix error answer into the taxonomy (5xx and 429 were already raised by ApiClient)."""
    status = resp.status_code
    if status < 400:
        return
    message, code = wix_error(_decode(resp))
    detail = f"HTTP {status} {code}: {message}"[:500]
    if status == 401:
        raise AuthError("Wix refused the API key (it is wrong, or was deleted)", fix=KEY_FIX, code=code or "401",
                        detail=detail)
    if status == 403:
        if code == "SITE_NOT_OWNED":
            raise AuthError("The API key belongs to a Wix account that does not own this site",
                            fix="create the API key in the account that owns the site, or correct the site ID",
                            code=code, detail=detail)
        raise AuthError(f"The Wix API key lacks a permission needed to {what}", code=code or "403", detail=detail,
                        fix="edit the API key in Wix's API Keys Manager and add the Wix eCommerce (orders) and "
                            "Wix Stores (products, inventory) permissions")
    if status == 404:
        if code == "SITE_NOT_FOUND":
            raise AuthError("Wix knows no site with this site ID", fix=SITE_FIX, code=code, detail=detail)
        raise NotFound(f"Wix has no such resource ({what})", code=code or "404", detail=detail)
    if status == 428:
        if code == "REQUIRED_APP_NOT_INSTALLED":
            raise ConfigError("Wix Stores is not installed on this site", code=code, detail=detail,
                              fix="install Wix Stores on the site, or switch inventory off for this connection")
        raise ConfigError(f"Wix refused to {what}: {message or 'precondition failed'}", code=code or "428",
                          detail=detail, fix="set the catalog version setting to 'auto'")
    raise DataError(f"Wix refused to {what}: {message or f'HTTP {status}'}", code=code or str(status),
                    detail=detail, fix="correct the data named in the message, then retry")


class WixClient:
    def __init__(self, http: ApiClient, api_key: str, site_id: str) -> None:
        self.http = http
        # The key is sent raw (no "Bearer"); site-level APIs also need the site id.
        self.headers = {"Authorization": api_key, "wix-site-id": site_id, "Accept": "application/json"}

    async def call(self, method: str, path: str, what: str, *, body: Any = None,
                   idempotent: bool | None = None) -> Any:
        resp = await self.http.request(method, path, headers=self.headers, idempotent=idempotent,
                                       **({"json": body} if body is not None else {}))
        raise_for(resp, what)
        data = _decode(resp)
        if not isinstance(data, dict):
            raise TransientError(f"Wix sent an unreadable answer to {method} {path} (HTTP {resp.status_code})",
                                 detail=resp.text[:200])
        return data

    # ------------------------------------------------------------------------------ orders
    async def search_orders(self, flt: dict[str, Any], sort: list[dict[str, str]],
                            limit: int = ORDERS_PAGE) -> AsyncIterator[dict[str, Any]]:
        """Every order matching, following ``metadata.cursors.next`` to the end."""
        body: dict[str, Any] = {"search": {"filter": flt, "sort": sort, "cursorPaging": {"limit": limit}}}
        while True:
            page = await self.call("POST", "/ecom/v1/orders/search", "search orders", body=body, idempotent=True)
            orders = page.get("orders")
            if not isinstance(orders, list):
                raise TransientError("Wix answered a search without an orders list")
            for order in orders:
                if isinstance(order, dict):
                    yield order
            meta = page.get("metadata") if isinstance(page.get("metadata"), dict) else {}
            cursor = (meta.get("cursors") or {}).get("next") if isinstance(meta.get("cursors"), dict) else None
            if not meta.get("hasNext") or not cursor:
                return
            # A cursor carries its own filter and sort: send it alone.
            body = {"search": {"cursorPaging": {"limit": limit, "cursor": cursor}}}

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        try:
            data = await self.call("GET", f"/ecom/v1/orders/{_seg(order_id)}", "read the order")
        except NotFound:
            return None
        order = data.get("order")
        return order if isinstance(order, dict) else None

    # ------------------------------------------------------------------------ fulfillments
    async def fulfillments(self, order_id: str) -> list[dict[str, Any]]:
        data = await self.call("GET", f"/ecom/v1/fulfillments/orders/{_seg(order_id)}", "read fulfillments")
        owf = data.get("orderWithFulfillments") if isinstance(data.get("orderWithFulfillments"), dict) else {}
        found = owf.get("fulfillments")
        return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []

    async def create_fulfillment(self, order_id: str, fulfillment: dict[str, Any]) -> str:
        data = await self.call("POST", f"/ecom/v1/fulfillments/orders/{_seg(order_id)}/create-fulfillment",
                               "create the fulfillment", body={"fulfillment": fulfillment}, idempotent=False)
        return str(data.get("fulfillmentId", ""))

    # ------------------------------------------------------------------------- catalog V1
    async def products_v1(self) -> AsyncIterator[dict[str, Any]]:
        """All products with their variants, paged on numericId (offset paging stops near 10k)."""
        last = -1
        while True:
            query = {"filter": json.dumps({"numericId": {"$gt": last}}),
                     "sort": json.dumps([{"numericId": "asc"}]), "paging": {"limit": PRODUCTS_PAGE, "offset": 0}}
            data = await self.call("POST", "/stores/v1/products/query", "read the product catalog",
                                   body={"query": query, "includeVariants": True}, idempotent=True)
            products = [p for p in data.get("products") or [] if isinstance(p, dict)]
            for p in products:
                yield p
            if len(products) < PRODUCTS_PAGE:
                return
            try:
                last = int(str(products[-1].get("numericId")))
            except ValueError:
                raise TransientError("Wix sent a product without a numeric id") from None

    async def set_stock_v1(self, product_id: str, variants: list[dict[str, Any]]) -> None:
        await self.call("PATCH", f"/stores/v2/inventoryItems/product/{_seg(product_id)}", "update inventory",
                        body={"inventoryItem": {"trackQuantity": True, "variants": variants}})

    # ------------------------------------------------------------------------- catalog V3
    async def _cursor_pages(self, path: str, key: str, list_name: str, query: dict[str, Any],
                            limit: int, what: str) -> AsyncIterator[dict[str, Any]]:
        paging: dict[str, Any] = {"limit": limit}
        while True:
            data = await self.call("POST", path, what, body={key: {**query, "cursorPaging": paging}},
                                   idempotent=True)
            for item in data.get(list_name) or []:
                if isinstance(item, dict):
                    yield item
            meta = data.get("pagingMetadata") if isinstance(data.get("pagingMetadata"), dict) else {}
            cursor = (meta.get("cursors") or {}).get("next") if isinstance(meta.get("cursors"), dict) else None
            if not meta.get("hasNext") or not cursor:
                return
            paging = {"limit": limit, "cursor": cursor}

    def variants_v3(self) -> AsyncIterator[dict[str, Any]]:
        return self._cursor_pages("/stores/v3/products/query-variants", "query", "variants", {}, 100,
                                  "read the product catalog")

    def inventory_v3(self, variant_ids: list[str], location_id: str = "") -> AsyncIterator[dict[str, Any]]:
        flt: dict[str, Any] = {"variantId": {"$in": variant_ids}}
        if location_id:
            flt["locationId"] = location_id
        return self._cursor_pages("/stores/v3/inventory-items/query", "query", "inventoryItems", {"filter": flt},
                                  100, "read inventory")

    async def set_stock_v3(self, item_id: str, revision: str, quantity: int) -> dict[str, Any]:
        body = {"inventoryItem": {"id": item_id, "revision": revision, "trackQuantity": True, "quantity": quantity}}
        data = await self.call("PATCH", f"/stores/v3/inventory-items/{_seg(item_id)}", "update inventory", body=body)
        return data.get("inventoryItem") if isinstance(data.get("inventoryItem"), dict) else {}

    async def inventory_item_v3(self, item_id: str) -> dict[str, Any]:
        data = await self.call("GET", f"/stores/v3/inventory-items/{_seg(item_id)}", "read inventory")
        return data.get("inventoryItem") if isinstance(data.get("inventoryItem"), dict) else {}

    async def catalog_version(self) -> str:
        """V3_CATALOG or V1_CATALOG: a V1 site answers V3 calls with HTTP 428."""
        try:
            await self.call("POST", "/stores/v3/inventory-items/query", "read inventory",
                            body={"query": {"cursorPaging": {"limit": 1}}}, idempotent=True)
        except ConfigError as exc:
            if exc.code == "CATALOG_V1_SITE_CALLING_CATALOG_V3_API":
                return "V1_CATALOG"
            raise
        return "V3_CATALOG"


def _seg(value: str) -> str:
    """One URL path segment (ids come from Wix, but never trust them to be path-safe)."""
    return quote(value, safe="")


# ------------------------------------------------------------------------------- webhooks
_PEM_BODY = re.compile(r"-----BEGIN [A-Z ]+-----|-----END [A-Z ]+-----|\s+")


def load_public_key(pem: str) -> RSAPublicKey:
    """The app's webhook public key as pasted from Wix (with or without the PEM armour)."""
    body = _PEM_BODY.sub("", pem or "")
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    try:
        key = load_pem_public_key(f"-----BEGIN PUBLIC KEY-----\n{lines}\n-----END PUBLIC KEY-----\n".encode())
    except ValueError:
        key = None
    if not isinstance(key, RSAPublicKey):
        raise ConfigError("The webhook public key is not a valid RSA public key",
                          fix="copy the public key from the Wix app's Webhooks page (Public key) and paste it whole")
    return key


CLOCK_SKEW_SECONDS = 300


def verify_webhook(body: bytes, public_key: RSAPublicKey, *, max_age_seconds: float | None = None,
                   now: float | None = None) -> dict[str, Any]:
    """Check the RS256 signature (and, when the token says when it was issued, that it is neither
    older than ``max_age_seconds`` nor from the future) and return the envelope
    ``{eventType, instanceId, data, identity}``."""
    token = body.decode("utf-8", "replace").strip().strip('"')
    try:
        claims = jwt.decode(token, key=public_key, algorithms=["RS256"], leeway=CLOCK_SKEW_SECONDS,
                            options={"verify_aud": False, "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise AuthError("Webhook signature does not match the Wix public key: not sent by Wix, or the key is "
                        "wrong", fix="check the webhook public key of this connection") from None
    except jwt.ExpiredSignatureError:
        raise AuthError("Webhook token has expired", code="expired") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"Webhook body is not a valid Wix token: {exc}") from None
    issued = claims.get("iat")
    if isinstance(issued, int | float) and not isinstance(issued, bool):
        clock = time.time() if now is None else now
        if max_age_seconds is not None and issued < clock - max_age_seconds:
            raise AuthError(f"Webhook was issued {(clock - issued) / 3600:.1f} hours ago, longer ago than this "
                            "connection accepts: a replayed delivery", code="replayed",
                            fix="nothing to do if it was a replay; the poller still reads every order")
    data = claims.get("data")
    try:
        envelope = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict):
        raise DataError("Webhook token carries no Wix event", fix="nothing to do; the poller still runs")
    return envelope
