"""Fixtures for the engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbridge.demo.sandboxes import SandboxProcess, running


@pytest.fixture
def sandboxes() -> Iterator[tuple[SandboxProcess, SandboxProcess]]:
    with running(SandboxProcess("houzz", {"accounts": [], "rate_limit": False}),
                 SandboxProcess("tradegecko", {"rate_calls": 40, "rate_period": 4})) as (houzz, tg):
        yield houzz, tg
