"""CartRover's response envelope: HTTP 200 and ``success_code`` in every body.

Errors carry ``error_code`` (Invalid, Failure, RateLimit), ``message`` and, for older clients,
the same text as ``status_message``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

INVALID, FAILURE, RATE_LIMIT = "Invalid", "Failure", "RateLimit"


class ApiFailure(Exception):
    """Ends a request with an error envelope."""

    def __init__(self, message: str, code: str = INVALID, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail


def body_ok(response: Any = None, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success_code": True}
    if response is not None:
        body["response"] = response
    body.update(top)
    return body


def body_error(message: str, code: str = INVALID, detail: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success_code": False, "error_code": code, "message": message,
                            "status_message": message}
    if detail is not None:
        body["error_response"] = detail
    return body


def ok(response: Any = None, **top: Any) -> JSONResponse:
    return JSONResponse(body_ok(response, **top))


def error(message: str, code: str = INVALID, detail: Any = None, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body_error(message, code, detail), status_code=status_code)
