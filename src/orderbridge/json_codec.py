"""JSON in and out on the hub's hot paths (API bodies, the ledger's JSON columns), through orjson.

Every order crosses JSON several times: the source's answer, its raw and mapped copies in the
ledger, the backend's request and answer. The standard library's codec was about 4 % of a hub's
CPU in ``orderbridge bench``; orjson does the same work several times faster. What orjson refuses
and the standard library reads or writes (integers beyond 64 bits, NaN) goes to the standard
library, so nothing that worked before fails now.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

# Datetimes and dataclasses go to ``default`` as with the standard library (orjson would write
# its own forms of them), so what is written does not depend on which codec wrote it; subclasses of
# str, int and dict are written as their base, and non-str keys as strings, as json does.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def loads(text: str | bytes) -> Any:
    """Parse JSON text; raises ``ValueError`` (``json.JSONDecodeError``) when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN, huge integers; or the standard library's error, with its message


def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text of ``obj`` (compact, UTF-8 characters as they are); ``default`` as in ``json.dumps``."""
    try:
        return orjson.dumps(obj, default=default, option=_OPTIONS).decode()
    except TypeError:
        # ASCII-escaped: a lone surrogate (orjson's usual refusal) stays writable as UTF-8.
        return json.dumps(obj, default=default, separators=(",", ":"))
