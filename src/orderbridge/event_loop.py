"""The event loop orderbridge's processes run on: uvloop where it is installed, else asyncio's own.

A hub spends much of its CPU in the event loop and the transports under its HTTP calls (scheduling
callbacks, reading and writing sockets). uvloop implements the same loop on libuv, in C; measured
in ``orderbridge bench`` it takes a sizeable share off the hub's CPU per order (see
docs/benchmarks.md). It is a dependency on Linux and macOS; on other platforms, or with
``ORDERBRIDGE_EVENT_LOOP=asyncio`` (to rule the loop out when chasing a problem), asyncio's loop
runs instead. The uvicorn servers (``serve``, the sandboxes) are given the same choice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from orderbridge.connectors.errors import ConfigError

T = TypeVar("T")

ENV = "ORDERBRIDGE_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop to run on (None: asyncio's default), from ``ORDERBRIDGE_EVENT_LOOP``."""
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ConfigError(f"{ENV}={choice!r} is not an event loop orderbridge knows",
                          fix=f"set it to one of: {', '.join(CHOICES)} (or unset it: auto)")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(f"{ENV}=uvloop, but uvloop is not installed",
                              fix="`pip install uvloop` (Linux, macOS), or unset the variable") from None
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a new loop of the configured kind (``asyncio.run``'s contract)."""
    try:
        factory = loop_factory()
    except ConfigError:
        coro.close()  # never started: no "was never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def loop_name() -> str:
    """Which loop ``run`` uses: "uvloop" or "asyncio", as uvicorn's ``loop`` option names them (the
    servers run on the same kind), and as the bench reports it beside its figures."""
    return "asyncio" if loop_factory() is None else "uvloop"
