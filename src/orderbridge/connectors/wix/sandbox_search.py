"""Wix sandbox: Search Orders (filter, sort, cursor paging) over one site's orders.

Filters use Wix's query language (``{"field": {"$op": value}}``, ``$and``/``$or``/``$not``, a bare
value meaning ``$eq``) on the fields Wix documents as filterable, with their operators; anything
else is a 400 validation error, as at Wix. Paging is keyset-based: the opaque cursor carries the
filter, the sort and the sort values of the last order returned, so a page is never skipped or
repeated when orders change between calls. Sorting on ``createdDate`` or ``updatedDate`` alone (the
default sort and the polling recipe) walks a sorted index from the cursor, so a page costs
O(page size) rather than O(orders).
"""

from __future__ import annotations

import base64
import bisect
import functools
import json
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from orderbridge.connectors.wix.sandbox_orders import WixApiError, iso, parse_time

Pred = Callable[[dict[str, Any]], bool]

EQ = {"$eq", "$ne", "$in", "$nin"}
RANGE = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}
ARRAY = EQ | {"$hasSome", "$hasAll"}
TEXT = {"$eq", "$ne", "$in", "$exists", "$startsWith"}

# field -> (kind, operators, sortable), after the Search Orders docs.
FIELDS: dict[str, tuple[str, set[str], bool]] = {
    "id": ("str", EQ, False),
    "number": ("num", RANGE | {"$in"}, True),
    "status": ("str", EQ, True),
    "paymentStatus": ("str", EQ, True),
    "fulfillmentStatus": ("str", EQ, True),
    "archived": ("bool", {"$eq", "$ne", "$in", "$exists"}, False),
    "createdDate": ("date", RANGE | {"$in", "$exists"}, True),
    "updatedDate": ("date", RANGE | {"$in", "$exists"}, True),
    "lineItems.productName.original": ("str", ARRAY, False),
    "lineItems.catalogReference.catalogItemId": ("str", ARRAY, False),
    "lineItems.catalogReference.appId": ("str", ARRAY, False),
    "buyerInfo.email": ("str", TEXT, True),
    "buyerInfo.contactId": ("str", EQ, False),
    "buyerInfo.memberId": ("str", EQ, False),
    "priceSummary.total.amount": ("num", RANGE, False),
    "billingInfo.contactDetails.fullName": ("str", TEXT, False),
    "billingInfo.contactDetails.firstName": ("str", TEXT, False),
    "billingInfo.contactDetails.lastName": ("str", TEXT, False),
    "shippingInfo.title": ("str", EQ, True),
    "shippingInfo.region.name": ("str", EQ, True),
    "channelInfo.type": ("str", EQ, True),
    "createdBy.userId": ("str", EQ, False),
    "subscriptionInfo.id": ("str", EQ, False),
}
INDEXED = ("createdDate", "updatedDate")
MAX_LIMIT = 100


def _bad(message: str, field: str) -> WixApiError:
    return WixApiError(400, message, "INVALID_ARGUMENT", field=field)


def values(order: dict[str, Any], path: str) -> list[Any]:
    """Every value at a dotted path (arrays along the way are flattened)."""
    if path == "billingInfo.contactDetails.fullName":
        c = (order.get("billingInfo") or {}).get("contactDetails") or {}
        full = " ".join(x for x in (c.get("firstName"), c.get("lastName")) if x)
        return [full] if full else []
    current: list[Any] = [order]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, dict) and part in item:
                v = item[part]
                nxt.extend(v if isinstance(v, list) else [v])
        current = nxt
    return [v for v in current if v is not None]


def _norm(kind: str, value: Any, field: str) -> Any:
    try:
        if kind == "date":
            return iso(parse_time(value))
        if kind == "num":
            if isinstance(value, bool):
                raise ValueError
            return float(Decimal(str(value.get("amount") if isinstance(value, dict) else value)))
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        return str(value)
    except (ValueError, TypeError, InvalidOperation, AttributeError):
        raise _bad(f"invalid value {value!r} for {field}", f"search.filter.{field}") from None


def _field_pred(field: str, op: str, arg: Any) -> Pred:
    kind, ops, _ = FIELDS[field]
    if op not in ops:
        raise _bad(f"operator {op} is not supported on {field}", f"search.filter.{field}")
    if op == "$exists":
        want = bool(arg)
        return lambda o: bool(values(o, field)) == want
    if op in {"$in", "$nin", "$hasSome", "$hasAll"}:
        if not isinstance(arg, list):
            raise _bad(f"{op} on {field} needs a list", f"search.filter.{field}")
        wanted = [_norm(kind, a, field) for a in arg]
        if op == "$in":
            return lambda o: any(_norm(kind, v, field) in wanted for v in values(o, field))
        if op == "$nin":
            return lambda o: not any(_norm(kind, v, field) in wanted for v in values(o, field))
        if op == "$hasSome":
            return lambda o: any(_norm(kind, v, field) in wanted for v in values(o, field))
        return lambda o: all(w in {_norm(kind, v, field) for v in values(o, field)} for w in wanted)
    if op == "$startsWith":
        prefix = str(arg)
        return lambda o: any(str(v).startswith(prefix) for v in values(o, field))
    target = _norm(kind, arg, field)
    compare: dict[str, Callable[[Any], bool]] = {
        "$eq": lambda v: v == target, "$ne": lambda v: v != target, "$gt": lambda v: v > target,
        "$gte": lambda v: v >= target, "$lt": lambda v: v < target, "$lte": lambda v: v <= target,
    }
    test = compare[op]
    if op == "$ne":
        return lambda o: not any(_norm(kind, v, field) == target for v in values(o, field))
    return lambda o: any(test(_norm(kind, v, field)) for v in values(o, field))


def _combine(op: str, subs: list[Pred]) -> Pred:
    if op == "$and":
        return lambda o: all(p(o) for p in subs)
    return lambda o: any(p(o) for p in subs)


def _negate(sub: Pred) -> Pred:
    return lambda o: not sub(o)


def compile_filter(flt: Any, where: str = "search.filter") -> Pred:
    if not isinstance(flt, dict):
        raise _bad("filter must be an object", where)
    preds: list[Pred] = []
    for key, cond in flt.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list):
                raise _bad(f"{key} needs a list", where)
            preds.append(_combine(key, [compile_filter(c, where) for c in cond]))
        elif key == "$not":
            preds.append(_negate(compile_filter(cond, where)))
        elif key in FIELDS:
            if isinstance(cond, dict) and cond and all(str(k).startswith("$") for k in cond):
                preds.extend(_field_pred(key, op, arg) for op, arg in cond.items())
            else:
                preds.append(_field_pred(key, "$eq", cond))
        else:
            raise _bad(f"filtering on {key} is not supported", f"{where}.{key}")
    return lambda o: all(p(o) for p in preds)


def parse_sort(sort: Any) -> list[tuple[str, str]]:
    if sort is None or sort == []:
        return [("createdDate", "DESC")]
    if not isinstance(sort, list):
        raise _bad("sort must be a list", "search.sort")
    out = []
    for s in sort:
        name = s.get("fieldName") if isinstance(s, dict) else None
        order = str(s.get("order", "ASC")).upper() if isinstance(s, dict) else ""
        if name not in FIELDS or not FIELDS[name][2]:
            raise _bad(f"sorting by {name} is not supported", "search.sort.fieldName")
        if order not in ("ASC", "DESC"):
            raise _bad(f"sort order {order} is not ASC or DESC", "search.sort.order")
        out.append((name, order))
    return out


def sort_key(order: dict[str, Any], sort: list[tuple[str, str]]) -> list[Any]:
    key: list[Any] = []
    for name, _ in sort:
        found = values(order, name)
        key.append([1, _norm(FIELDS[name][0], found[0], name)] if found else [0, ""])
    key.append([1, order.get("id", "")])
    return key


def _after(key: list[Any], last: list[Any], dirs: list[str]) -> int:
    """>0 when ``key`` comes after ``last`` in the requested order, <0 before, 0 equal."""
    for k, c, d in zip(key, last, dirs, strict=True):
        if k != c:
            return (1 if k > c else -1) * (1 if d == "ASC" else -1)
    return 0


def encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(state, dict) or "after" not in state:
            raise ValueError
        return state
    except (ValueError, TypeError):
        raise _bad("invalid cursor", "search.cursorPaging.cursor") from None


class SortedIndex:
    """(timestamp, order id) pairs kept sorted: range starts by bisection, walks in either direction."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, value: str, oid: str) -> None:
        bisect.insort(self.items, (value, oid))

    def remove(self, value: str, oid: str) -> None:
        i = bisect.bisect_left(self.items, (value, oid))
        if i < len(self.items) and self.items[i] == (value, oid):
            del self.items[i]

    def walk(self, desc: bool, after: tuple[str, str] | None, lo: str | None, hi: str | None) -> Iterator[str]:
        items = self.items
        if not desc:
            start = bisect.bisect_left(items, (lo, "")) if lo else 0
            if after:
                start = max(start, bisect.bisect_right(items, after))
            for value, oid in items[start:] if start else items:
                if hi and value > hi:
                    return
                yield oid
        else:
            end = bisect.bisect_right(items, (hi, "\uffff")) if hi else len(items)
            if after:
                end = min(end, bisect.bisect_left(items, after))
            for i in range(end - 1, -1, -1):
                value, oid = items[i]
                if lo and value < lo:
                    return
                yield oid


def _bounds(flt: dict[str, Any], field: str) -> tuple[str | None, str | None]:
    """Loose range bounds on ``field`` from the filter's top level (the predicate stays exact)."""
    conds = [flt.get(field)] + [c.get(field) for c in flt.get("$and", []) if isinstance(c, dict)]
    lo = hi = None
    for cond in conds:
        if not isinstance(cond, dict):
            continue
        for op in ("$gt", "$gte", "$eq"):
            if op in cond:
                v = _norm("date", cond[op], field)
                lo = v if lo is None or v > lo else lo
        for op in ("$lt", "$lte", "$eq"):
            if op in cond:
                v = _norm("date", cond[op], field)
                hi = v if hi is None or v < hi else hi
    return lo, hi


def search(orders: dict[str, dict[str, Any]], indexes: dict[str, SortedIndex], body: Any) -> dict[str, Any]:
    """Answer ``POST /ecom/v1/orders/search``."""
    s = body.get("search") if isinstance(body, dict) else None
    s = s if isinstance(s, dict) else {}
    paging = s.get("cursorPaging") or {}
    limit = paging.get("limit", MAX_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
        raise _bad(f"limit must be between 1 and {MAX_LIMIT}", "search.cursorPaging.limit")
    if paging.get("cursor"):
        state = decode_cursor(str(paging["cursor"]))  # the cursor's own filter and sort win
        flt, sort = state.get("filter") or {}, [tuple(x) for x in state.get("sort") or []]
        last: list[Any] | None = state["after"]
    else:
        flt, sort, last = s.get("filter") or {}, parse_sort(s.get("sort")), None
    pred = compile_filter(flt)
    dirs = [d for _, d in sort] + [sort[0][1]]
    page: list[dict[str, Any]] = []
    if len(sort) == 1 and sort[0][0] in INDEXED:
        name, desc = sort[0][0], sort[0][1] == "DESC"
        lo, hi = _bounds(flt, name)
        after = (last[0][1], last[1][1]) if last else None
        for oid in indexes[name].walk(desc, after, lo, hi):
            o = orders[oid]
            if o.get("status") != "INITIALIZED" and pred(o):
                page.append(o)
                if len(page) > limit:
                    break
    else:
        hits = [o for o in orders.values() if o.get("status") != "INITIALIZED" and pred(o)]
        keyed = [(sort_key(o, sort), o) for o in hits]
        if last is not None:
            keyed = [(k, o) for k, o in keyed if _after(k, last, dirs) > 0]
        keys = [k for k, _ in keyed]

        def cmp(a: int, b: int) -> int:
            return _after(keys[a], keys[b], dirs)

        ranks = sorted(range(len(keyed)), key=functools.cmp_to_key(cmp))
        page = [keyed[i][1] for i in ranks[: limit + 1]]
    has_next = len(page) > limit
    page = page[:limit]
    nxt = None
    if has_next:
        nxt = encode_cursor({"filter": flt, "sort": [list(x) for x in sort], "after": sort_key(page[-1], sort)})
    # Backward paging is not emulated: ``prev`` is always null (the connector never pages back).
    return {"orders": page, "metadata": {"count": len(page), "cursors": {"next": nxt, "prev": None},
                                         "hasNext": has_next}}
