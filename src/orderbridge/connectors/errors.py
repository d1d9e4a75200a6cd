"""The error taxonomy every connector speaks.

The engine decides what to do from the class alone: transient errors are retried with backoff,
data errors put the order in ``error`` with a message and the fix, auth/config errors pause the
connection's jobs and raise an alert.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class. ``message`` is written for a merchant; ``fix`` says what to do about it."""

    def __init__(self, message: str, *, fix: str = "", code: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.code = code or type(self).__name__
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


class TransientError(ConnectorError):
    """Network trouble, timeouts, 5xx, 429: worth retrying later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The API said 429 (or its equivalent)."""


class DataError(ConnectorError):
    """The order itself is wrong for the other side: unknown SKU, missing field, rejected.

    Retried only after the cause is fixed (an alias added, a mapping made, the order edited).
    """


class AuthError(ConnectorError):
    """Credentials are wrong, expired, or lack a permission."""


class ConfigError(ConnectorError):
    """The connection's settings cannot work (missing warehouse, contradictory options...)."""


class NotFound(ConnectorError):
    """The thing looked up does not exist at the other side."""
