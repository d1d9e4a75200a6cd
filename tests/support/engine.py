"""Driving the engine from tests: run `sync_once` to idle, wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from orderbridge.engine.hub import Hub
from orderbridge.runners.embedded import sync_once


def sync(hub: Hub, *only: str, times: int = 1) -> None:
    """Run every job (of the named connections, or all) until idle, ``times`` times."""

    async def once() -> None:
        try:
            await sync_once(hub, connections=list(only) or None)
        finally:
            await hub.aclose()  # live connectors belong to this event loop

    for _ in range(times):
        asyncio.run(once())


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)
