"""Logging set-up with secret redaction: every configured credential is masked in every line."""

from __future__ import annotations

import logging
import threading

_secrets: set[str] = set()
_longest_first: tuple[str, ...] = ()  # what redact() masks, rebuilt at each registration
_lock = threading.Lock()
MASK = "***"


def register_secret(value: str) -> None:
    """Mask this value wherever it would appear in a log line (too-short values are ignored)."""
    global _longest_first
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def forget_secrets() -> None:
    """Mask nothing more (as in a fresh process, before any credential is read)."""
    global _longest_first
    with _lock:
        _secrets.clear()
        _longest_first = ()


def redact(text: str) -> str:
    # Every order event and log line passes here: the secrets are sorted once per registration,
    # not per call, and read without the lock (a tuple is replaced whole, never changed).
    for s in _longest_first:
        if s in text:
            text = text.replace(s, MASK)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def setup_logging(level: str = "INFO", file: str | None = None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file:
        handlers.append(logging.FileHandler(file))
    for h in handlers:
        h.addFilter(RedactingFilter())
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
