"""Fixtures for the engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbridge.demo.sandboxes import SandboxProcess


@pytest.fixture
def sandboxes() -> Iterator[tuple[SandboxProcess, SandboxProcess]]:
    with SandboxProcess("houzz", {"accounts": [], "rate_limit": False}) as houzz, \
            SandboxProcess("tradegecko", {"rate_calls": 40, "rate_period": 4}) as tg:
        yield houzz, tg
