"""The event loop the commands run on: uvloop where installed, asyncio's when asked, a clear error else."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys

import pytest

from orderbridge import event_loop
from orderbridge.connectors.errors import ConfigError

UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_commands_run_on_uvloop_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.ENV, raising=False)
    module = event_loop.run(_loop_module())
    if sys.platform != "win32":  # a dependency wherever it builds
        assert UVLOOP
    assert module.startswith("uvloop") == UVLOOP, module
    assert event_loop.loop_name() == ("uvloop" if UVLOOP else "asyncio")


def test_asyncio_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    assert event_loop.run(_loop_module()).startswith("asyncio")
    assert event_loop.loop_name() == "asyncio"


def test_an_unknown_loop_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "tokio")
    with pytest.raises(ConfigError) as caught:
        event_loop.run(_loop_module())
    assert "'tokio'" in caught.value.message and "auto, uvloop, asyncio" in caught.value.fix


def test_the_cli_reports_a_wrong_loop_setting_in_two_lines() -> None:
    # On a fresh SQLite ledger: every command that runs async work goes through the loop first.
    done = subprocess.run([sys.executable, "-m", "orderbridge", "connections", "test", "nothing"],
                          capture_output=True, text=True, env={**_env(), event_loop.ENV: "tokio"})
    assert done.returncode == 2, done.stderr
    assert "error: ORDERBRIDGE_EVENT_LOOP='tokio' is not an event loop orderbridge knows" in done.stderr
    assert "fix: set it to one of: auto, uvloop, asyncio" in done.stderr
    assert "Traceback" not in done.stderr and "never awaited" not in done.stderr


def _env() -> dict[str, str]:
    import os
    import tempfile

    return {**os.environ, "ORDERBRIDGE_DATA_DIR": tempfile.mkdtemp(prefix="ob-loop-")}
