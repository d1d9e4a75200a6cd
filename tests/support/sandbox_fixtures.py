"""The fixture trio every connector's tests use: a sandbox served over real HTTP per module, its
admin client (reset before and after each test), and its URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.stored_reads import ReadEntry


def sandbox_fixtures(
    create_app: Callable[[dict[str, Any]], Any], options: dict[str, Any],
    make_admin: Callable[[str], Any], reset: str = "clear_faults",
) -> tuple[Any, Any, Any]:
    """`served, admin, url = sandbox_fixtures(...)` in a conftest; `reset` names the admin's
    method that puts the sandbox back between tests."""

    @pytest.fixture(scope="module")
    def served() -> Iterator[ServedApp]:
        with ServedApp(create_app(dict(options))) as s:
            yield s

    @pytest.fixture
    def admin(served: ServedApp) -> Iterator[Any]:
        a = make_admin(served.url)
        getattr(a, reset)()
        yield a
        getattr(a, reset)()
        a.http.close()

    @pytest.fixture
    def url(served: ServedApp) -> str:
        return served.url

    return served, admin, url


class SandboxAdmin:
    """Base of each sandbox's admin client: the `/__sandbox__` surface over real HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url + "/__sandbox__", timeout=10)

    def _ok(self, resp: httpx.Response) -> Any:
        assert resp.status_code == 200, resp.text
        return resp.json()


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    """What a connector's iterator hands over; entries read unmapped mapped, as the engine maps
    every one it has no digest of."""
    return [i.item() if isinstance(i, ReadEntry) else i async for i in items]
