"""Who is calling, and what they may see: credentials (Basic, or the older query-string pair) and
the scope of the key for the endpoint's level (see orderbridge.api.keys for the rules)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from starlette.requests import Request

from orderbridge.api.envelope import ApiFailure
from orderbridge.api.keys import AuthKey

CART, MERCHANT, WAREHOUSE_WRITE, ANY, WAREHOUSE = "cart", "merchant", "warehouse_write", "any", "warehouse"


def credentials(request: Request) -> tuple[str, str] | None:
    """Basic auth first; ``api_user`` / ``api_key`` query parameters as the fallback."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value.strip():
        try:
            user, sep, key = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ApiFailure("The Authorization header is not valid Basic auth (base64 of api_user:api_key)") from None
        if sep and user:
            return user, key
    user, key = request.query_params.get("api_user", ""), request.query_params.get("api_key", "")
    if user and key:
        return user, key
    return None


@dataclass
class Scope:
    """What one call may see. Exactly one of source_id / backend_id / merchant_ids bounds the orders."""

    key: AuthKey
    merchant_ids: list[int] = field(default_factory=list)
    source_id: int | None = None  # a cart key: this cart's orders only
    backend_id: int | None = None  # a warehouse's key: the orders delivered to this warehouse only

    @property
    def merchant_id(self) -> int:
        return self.merchant_ids[0]


def _merchant_pk(request: Request) -> int | None:
    value = request.headers.get("x-merchant-pk", "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ApiFailure(f"X-Merchant-Pk must be a merchant pk from wms/merchant/list, got {value!r}")
    return int(value)


def _acting_merchant(key: AuthKey, request: Request) -> int:
    pk = _merchant_pk(request)
    if pk is None:
        if len(key.grants) == 1:
            return next(iter(key.grants))
        raise ApiFailure("This warehouse key serves several merchants: send X-Merchant-Pk with the merchant_pk "
                         "from wms/merchant/list")
    if pk not in key.grants:
        raise ApiFailure(f"X-Merchant-Pk {pk} is not one of this key's merchants (see wms/merchant/list)")
    return pk


def scope_for(key: AuthKey, request: Request, level: str) -> Scope:
    if level == CART:
        if key.level != "cart":
            raise ApiFailure("cart/... endpoints need the API key of an API Access cart (a cart-level key)")
        return Scope(key=key, merchant_ids=[int(key.merchant_id or 0)], source_id=key.connection_id)
    if level == WAREHOUSE:
        if key.level == "warehouse":
            return Scope(key=key, merchant_ids=list(key.grants))
        if key.level == "merchant":
            return Scope(key=key, merchant_ids=[int(key.merchant_id or 0)])
        raise ApiFailure("wms/merchant/list needs a warehouse or merchant key")
    if level == ANY and key.level == "cart":
        return Scope(key=key, merchant_ids=[int(key.merchant_id or 0)], source_id=key.connection_id)
    if key.level == "cart":
        raise ApiFailure("merchant/... endpoints need a merchant or warehouse key, not a cart key")
    if key.level == "warehouse":
        if level == ANY and _merchant_pk(request) is None:
            return Scope(key=key, merchant_ids=list(key.grants))
        merchant = _acting_merchant(key, request)
        scope = Scope(key=key, merchant_ids=[merchant], backend_id=key.grants[merchant])
    else:
        pk = _merchant_pk(request)
        if pk is not None and pk != key.merchant_id:
            raise ApiFailure(f"X-Merchant-Pk {pk} is not this key's merchant")
        scope = Scope(key=key, merchant_ids=[int(key.merchant_id or 0)], backend_id=key.connection_id)
    if level == WAREHOUSE_WRITE and scope.backend_id is None:
        raise ApiFailure("Only a warehouse's key may acknowledge orders, post shipments or push stock: this merchant "
                         "key is not attached to a CartRover API warehouse connection",
                         detail={"fix": "orderbridge keys create --level merchant --connection <cartrover_wms name>"})
    return scope
