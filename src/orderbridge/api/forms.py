"""Form bodies with PHP/Rails-style nested keys: ``items[][item]=C100&items[][quantity]=2``.

An empty ``[]`` appends to a list; a new element starts when the last one already has the key
(Rails' rule, which is how rest-client encodes an array of hashes, e.g. sifourteen's client).
Explicit indices (``items[0][item]``) give a mapping keyed by index, read in index order.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

MAX_DEPTH = 8
MAX_FIELDS = 20_000

_PART = re.compile(r"\[([^\[\]]*)\]")


class FormProblem(ValueError):
    pass


def split_key(key: str) -> list[str]:
    head, bracket, _ = key.partition("[")
    if not bracket or not head:
        return [key]
    rest = key[len(head):]
    parts = _PART.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        return [key]  # not a well-formed nested key: keep it whole
    return [head, *parts]


def _has(container: dict[str, Any], parts: list[str]) -> bool:
    head, rest = parts[0], parts[1:]
    if head == "" or head not in container:
        return False
    return not rest or (isinstance(container[head], dict) and _has(container[head], rest))


def _assign(container: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    head, rest = parts[0], parts[1:]
    if not rest:
        container[head] = value
        return
    if rest[0] == "":
        target = container.setdefault(head, [])
        if not isinstance(target, list):
            raise FormProblem(f"form field {key!r} mixes a list with a single value or an object")
        child = rest[1:]
        if not child:
            target.append(value)
        elif target and isinstance(target[-1], dict) and not _has(target[-1], child):
            _assign(target[-1], child, value, key)
        else:
            element: dict[str, Any] = {}
            _assign(element, child, value, key)
            target.append(element)
        return
    nested = container.setdefault(head, {})
    if not isinstance(nested, dict):
        raise FormProblem(f"form field {key!r} mixes an object with a single value or a list")
    _assign(nested, rest, value, key)


def parse_form(body: str) -> dict[str, Any]:
    pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        if len(parts) > MAX_DEPTH:
            raise FormProblem(f"form field {key!r} is nested deeper than {MAX_DEPTH} levels")
        _assign(out, parts, value, key)
    return out
