"""Reading requests: bounded bodies (JSON object, JSON array or nested form), flags, paging, dates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request

from orderbridge.api.envelope import ApiFailure
from orderbridge.api.forms import FormProblem, parse_form
from orderbridge.connectors.cartrover.mapping import parse_timestamp

DEFAULT_LIMIT = 20


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiFailure(f"Request body of {declared} bytes is over the limit of {max_bytes} bytes; "
                         "send fewer orders per call (use cart/orders/batch in chunks)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiFailure(f"Request body is over the limit of {max_bytes} bytes; send fewer orders per call")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_body(body: bytes, content_type: str) -> Any:
    """JSON (object or array) when it looks like JSON or says so; a nested form otherwise."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ApiFailure("Request body is not UTF-8 text; send JSON or a form") from None
    if not text:
        raise ApiFailure("Request body is empty; send the order as JSON (or form-encoded)")
    if text[0] in "[{" or "json" in content_type.lower():
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ApiFailure(f"Request body is not valid JSON: {exc}") from None
        _valid_unicode(data)
        return data
    try:
        return parse_form(text)
    except (FormProblem, ValueError) as exc:
        raise ApiFailure(f"Request body is neither JSON nor a valid form: {exc}") from None


def _valid_unicode(data: Any) -> None:
    """JSON may escape half of a UTF-16 pair alone ("\\ud800"): no text column or JSON encoder of
    the ledger takes such a string, so the body is refused rather than stored half-way."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiFailure("Request body holds a \\u escape of a lone UTF-16 surrogate, which is not a character; "
                         "send valid Unicode text (escape characters beyond U+FFFF as a surrogate pair)") from None
    except RecursionError:
        raise ApiFailure("Request body is nested too deeply") from None


async def read_json_or_form(request: Request, max_bytes: int) -> Any:
    return parse_body(await read_body(request, max_bytes), request.headers.get("content-type", ""))


def flag(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    low = value.strip().lower()
    if low in ("y", "yes", "true", "1"):
        return True
    if low in ("n", "no", "false", "0"):
        return False
    raise ApiFailure(f"{name} must be Y or N, got {value!r}")


@dataclass(frozen=True)
class Paging:
    limit: int
    page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ApiFailure(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise ApiFailure(f"{name} must be between {low} and {high}, got {number}")
    return number


def paging(request: Request, max_limit: int = 100) -> Paging:
    return Paging(limit=_int(request, "limit", DEFAULT_LIMIT, 1, max_limit),
                  page=_int(request, "page", 1, 1, 1_000_000))


def date_param(request: Request, name: str, *, end_of_day: bool = False) -> datetime | None:
    value = request.query_params.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return parse_timestamp(value, end_of_day=end_of_day)
    except ValueError:
        raise ApiFailure(f"{name} must be ISO 8601 with a time zone (e.g. 2024-05-03T10:00:00+00:00, "
                         f"'+' sent as %2B) or a date YYYY-MM-DD, got {value!r}") from None
