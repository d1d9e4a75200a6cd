"""Wix sandbox: Stores catalog and inventory, in both catalog versions.

Catalog V1 sites answer ``/stores/v1/products/*`` and ``/stores/v2/inventoryItems/*`` (absolute
PATCH per product, increment/decrement); catalog V3 sites answer ``/stores/v3/products/query-variants``
and ``/stores/v3/inventory-items/*`` (PATCH with ``revision``). Calling the other version's API is
the HTTP 428 Wix gives. Both views share one stock record per (product, variant).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from orderbridge.connectors.wix.sandbox_orders import WixApiError
from orderbridge.connectors.wix.sandbox_store import Site, StockItem, Store, not_found

V1_MAX, V3_MAX = 100, 1000


def require_catalog(site: Site, version: str) -> None:
    if site.catalog_version == "STORES_NOT_INSTALLED":
        raise WixApiError(428, "Wix Stores is not installed on this site", "REQUIRED_APP_NOT_INSTALLED")
    if site.catalog_version != version:
        code = ("CATALOG_V1_SITE_CALLING_CATALOG_V3_API" if version == "V3_CATALOG"
                else "CATALOG_V3_SITE_CALLING_CATALOG_V1_API")
        raise WixApiError(428, f"this site uses {site.catalog_version}; it cannot call this API", code)


def _limit(value: Any, cap: int, field: str) -> int:
    if value is None:
        return min(50, cap)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= cap:
        raise WixApiError(400, f"limit must be between 1 and {cap}", field=field)
    return value


def _json_string(value: Any, field: str) -> Any:
    """V1 queries carry filter and sort as JSON *strings*."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise WixApiError(400, f"{field} is not valid JSON", field=field) from None
    return value


def _test(op: str, v: Any, arg: Any, conv: Any) -> bool:
    if op in ("$in", "$hasSome"):
        return v in [conv(a) for a in arg]
    if op == "$contains":
        return str(arg) in str(v)
    if op == "$startsWith":
        return str(v).startswith(str(arg))
    a = conv(arg)
    results = {"$eq": v == a, "$ne": v != a, "$gt": v > a, "$gte": v >= a, "$lt": v < a, "$lte": v <= a}
    if op not in results:
        raise WixApiError(400, f"operator {op} is not supported", field="query.filter")
    return results[op]


def _match(value: Any, cond: Any, numeric: bool = False) -> bool:
    """The operators V1 queries support on sku, id, name, numericId, productId."""
    def conv(x: Any) -> Any:
        return int(str(x)) if numeric else str(x)
    try:
        if not isinstance(cond, dict):
            return bool(conv(value) == conv(cond))
        return all(_test(op, conv(value), arg, conv) for op, arg in cond.items())
    except (ValueError, TypeError):
        raise WixApiError(400, f"invalid filter value {cond!r}", field="query.filter") from None


# ------------------------------------------------------------------------------ catalog V1
def query_products(store: Store, site: Site, body: dict[str, Any]) -> dict[str, Any]:
    query = body.get("query") or {}
    flt = _json_string(query.get("filter"), "query.filter") or {}
    sort = _json_string(query.get("sort"), "query.sort") or [{"numericId": "asc"}]
    paging = query.get("paging") or {}
    limit = _limit(paging.get("limit"), V1_MAX, "query.paging.limit")
    offset = int(paging.get("offset") or 0)
    fields = {"id", "sku", "name", "numericId"}
    if not isinstance(flt, dict) or set(flt) - fields:
        raise WixApiError(400, f"filter fields must be among {sorted(fields)}", field="query.filter")
    hits = [p for p in site.products.values()
            if all(_match(p[k], c, numeric=k == "numericId") for k, c in flt.items())]
    (key, direction), = (sort[0] if sort else {"numericId": "asc"}).items()
    hits.sort(key=lambda p: int(p["numericId"]) if key == "numericId" else str(p.get(key, "")),
              reverse=str(direction).lower() == "desc")
    page = hits[offset:offset + limit]
    include = bool(body.get("includeVariants"))
    return {"products": [store.render_product(site, p["id"], include) for p in page],
            "metadata": {"items": len(page), "offset": offset}, "totalResults": len(hits)}


def get_product(store: Store, site: Site, pid: str) -> dict[str, Any]:
    if pid not in site.products:
        raise not_found(f"product {pid}")
    return {"product": store.render_product(site, pid, include_variants=True)}


def _inventory_v1(site: Site, pid: str) -> dict[str, Any]:
    p = site.products[pid]
    items = [site.stock[(pid, vid)] for vid in p["variantIds"]]
    return {"id": p["inventoryItemId"], "productId": pid, "externalId": pid,
            "trackQuantity": all(i.track for i in items), "lastUpdated": p["lastUpdated"],
            "numericId": p["numericId"],
            "variants": [{"variantId": i.variant_id, "inStock": i.in_stock, "quantity": i.quantity if i.track else None,
                          "availableForPreorder": False} for i in items]}


def _product_of(site: Site, ref: str, by_inventory_id: bool = False) -> str:
    pid = site.by_inventory_id.get(ref) if by_inventory_id else ref
    if pid is None or pid not in site.products:
        raise not_found(f"inventory item {ref}")
    return pid


def query_inventory_v1(site: Site, body: dict[str, Any]) -> dict[str, Any]:
    query = body.get("query") or {}
    flt = _json_string(query.get("filter"), "query.filter") or {}
    paging = query.get("paging") or {}
    limit = _limit(paging.get("limit"), V1_MAX, "query.paging.limit")
    offset = int(paging.get("offset") or 0)
    hits = []
    for pid in site.products:
        item = _inventory_v1(site, pid)
        if all(_match(item.get(k), c) for k, c in flt.items()):
            hits.append(item)
    page = hits[offset:offset + limit]
    return {"inventoryItems": page, "metadata": {"items": len(page), "offset": offset}, "totalResults": len(hits)}


def get_variants_v1(site: Site, pid: str, body: dict[str, Any]) -> dict[str, Any]:
    item = _inventory_v1(site, _product_of(site, pid))
    wanted = body.get("variantIds")
    if wanted:
        item["variants"] = [v for v in item["variants"] if v["variantId"] in wanted]
    return {"inventoryItem": item}


def patch_inventory_v1(store: Store, site: Site, ref: str, body: dict[str, Any],
                       by_inventory_id: bool) -> dict[str, Any]:
    pid = _product_of(site, ref, by_inventory_id)
    spec = body.get("inventoryItem")
    if not isinstance(spec, dict):
        raise WixApiError(400, "inventoryItem is required", field="inventoryItem")
    track = spec.get("trackQuantity")
    changes: list[tuple[StockItem, dict[str, Any]]] = []
    for v in spec.get("variants") or []:
        vid = v.get("variantId") if isinstance(v, dict) else None
        item = site.stock.get((pid, str(vid)))
        if item is None:
            raise WixApiError(400, f"variant {vid} is not a variant of product {pid}", "VARIANT_NOT_FOUND",
                              data={"variantId": vid})
        qty = v.get("quantity")
        if qty is not None and (not isinstance(qty, int) or isinstance(qty, bool)):
            raise WixApiError(400, f"quantity {qty!r} is not an integer", field="inventoryItem.variants.quantity")
        changes.append((item, v))
    for item, v in changes:  # validated first: a bad variant changes nothing
        store.set_stock(site, item, quantity=v.get("quantity"), track=track, in_stock=v.get("inStock"),
                        via="PATCH /stores/v2/inventoryItems")
    if not changes and track is not None:
        for vid in site.products[pid]["variantIds"]:
            store.set_stock(site, site.stock[(pid, vid)], track=track, via="PATCH /stores/v2/inventoryItems")
    return {}


def adjust_inventory_v1(store: Store, site: Site, body: dict[str, Any], sign: int) -> dict[str, Any]:
    key, by = ("decrementData", "decrementBy") if sign < 0 else ("incrementData", "incrementBy")
    for entry in body.get(key) or []:
        pid = _product_of(site, str(entry.get("inventoryId")), True) if entry.get("inventoryId") \
            else _product_of(site, str(entry.get("productId")))
        item = site.stock.get((pid, str(entry.get("variantId"))))
        if item is None:
            raise WixApiError(400, f"variant {entry.get('variantId')} not found", "VARIANT_NOT_FOUND")
        store.set_stock(site, item, quantity=item.quantity + sign * int(entry.get(by, 0)),
                        via=f"POST /stores/v2/inventoryItems/{'decrement' if sign < 0 else 'increment'}")
    return {}


# ------------------------------------------------------------------------------ catalog V3
def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(str(cursor)))["o"])
    except (ValueError, KeyError, TypeError):
        raise WixApiError(400, "invalid cursor", field="query.cursorPaging.cursor") from None


def _paged(items: list[Any], paging: dict[str, Any], cap: int, name: str) -> dict[str, Any]:
    limit = _limit(paging.get("limit"), cap, "query.cursorPaging.limit")
    start = _offset(paging.get("cursor"))
    page = items[start:start + limit]
    has_next = start + limit < len(items)
    return {name: page, "pagingMetadata": {"count": len(page), "hasNext": has_next,
                                           "cursors": {"next": _cursor(start + limit) if has_next else None}}}


def query_variants_v3(site: Site, body: dict[str, Any]) -> dict[str, Any]:
    query = body.get("query") or {}
    variants = [{"id": vid, "sku": site.stock[(pid, vid)].sku, "choices": p["choices"].get(vid, {}),
                 "productData": {"productId": pid, "name": p["name"]}}
                for pid, p in site.products.items() for vid in p["variantIds"]]
    return _paged(variants, query.get("cursorPaging") or {}, V3_MAX, "variants")


def query_inventory_v3(store: Store, site: Site, body: dict[str, Any], key: str) -> dict[str, Any]:
    query = body.get(key) or {}
    flt = query.get("filter") or {}
    names = {"id": "id", "productId": "productId", "variantId": "variantId", "locationId": "locationId"}
    if not isinstance(flt, dict) or set(flt) - set(names):
        raise WixApiError(400, f"filter fields must be among {sorted(names)}", field=f"{key}.filter")
    items = [store.stock_item_v3(site, i) for i in site.stock.values()]
    hits = [i for i in items if all(_match(i[names[k]], c) for k, c in flt.items())]
    return _paged(hits, query.get("cursorPaging") or {}, 100, "inventoryItems")


def _item_v3(site: Site, item_id: str) -> StockItem:
    key = site.by_item_id.get(item_id)
    if key is None:
        raise not_found(f"inventory item {item_id}")
    return site.stock[key]


def get_inventory_v3(store: Store, site: Site, item_id: str) -> dict[str, Any]:
    return {"inventoryItem": store.stock_item_v3(site, _item_v3(site, item_id))}


def patch_inventory_v3(store: Store, site: Site, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
    item = _item_v3(site, item_id)
    spec = body.get("inventoryItem")
    if not isinstance(spec, dict) or spec.get("revision") in (None, ""):
        raise WixApiError(400, "inventoryItem.revision is required", field="inventoryItem.revision")
    if str(spec["revision"]) != str(item.revision):
        raise WixApiError(409, f"revision {spec['revision']} is stale (current {item.revision})",
                          "REVISION_MISMATCH", data={"currentRevision": str(item.revision)})
    qty = spec.get("quantity")
    if qty is not None and (not isinstance(qty, int) or isinstance(qty, bool)):
        raise WixApiError(400, f"quantity {qty!r} is not an integer", field="inventoryItem.quantity")
    track = spec.get("trackQuantity")
    if qty is not None and track is False:
        raise WixApiError(400, "quantity needs trackQuantity", field="inventoryItem.quantity")
    store.set_stock(site, item, quantity=qty, track=True if qty is not None else track,
                    in_stock=spec.get("inStock"), via="PATCH /stores/v3/inventory-items")
    return {"inventoryItem": store.stock_item_v3(site, item)}
