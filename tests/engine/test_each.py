"""JobContext.each: every item once, never more in progress than allowed, an auth error stops the rest."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from orderbridge.connectors.errors import AuthError
from orderbridge.engine.context import ITEMS_PER_CALL_SLOT, JobAborted, JobContext


def _ctx(concurrency: int) -> JobContext:
    hub: Any = SimpleNamespace(runner=SimpleNamespace(concurrency=concurrency))
    return JobContext(hub=hub, row=SimpleNamespace(id=1), job="test")  # type: ignore[arg-type]


@pytest.mark.parametrize("widen", [False, True])
def test_each_runs_every_item_once_within_its_width(widen: bool) -> None:
    ctx = _ctx(3)
    done: list[int] = []
    running, most, tasks = 0, 0, 0

    async def fn(item: int) -> None:
        nonlocal running, most, tasks
        running += 1
        most = max(most, running)
        tasks = max(tasks, len(asyncio.all_tasks()))
        await asyncio.sleep(0.001 * (item % 4))
        running -= 1
        done.append(item)

    asyncio.run(ctx.each(range(100), fn, widen=widen))
    assert sorted(done) == list(range(100))
    width = 3 * (ITEMS_PER_CALL_SLOT if widen else 1)
    assert most == width
    assert tasks <= width + 1  # the workers and the caller: not a task per item


def test_each_stops_taking_items_after_an_auth_error() -> None:
    ctx = _ctx(2)
    started: list[int] = []

    async def fn(item: int) -> None:
        started.append(item)
        await asyncio.sleep(0)
        if item == 5:
            raise AuthError("token revoked")

    with pytest.raises(JobAborted):
        asyncio.run(ctx.each(range(100), fn))
    assert 5 in started and len(started) < 10
