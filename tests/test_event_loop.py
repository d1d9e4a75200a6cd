"""The event loop the commands and servers run on: uvloop where installed, asyncio's when asked, a
clear error else."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from orderbridge import event_loop
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.sandbox_kit import ServedApp

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


def test_the_cli_reports_a_wrong_loop_setting_in_two_lines(tmp_path: Path) -> None:
    # On a fresh SQLite ledger: every command that runs async work goes through the loop first.
    env = {**os.environ, "ORDERBRIDGE_DATA_DIR": str(tmp_path), event_loop.ENV: "tokio"}
    done = subprocess.run([sys.executable, "-m", "orderbridge", "connections", "test", "nothing"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr
    assert "error: ORDERBRIDGE_EVENT_LOOP='tokio' is not an event loop orderbridge knows" in done.stderr
    assert "fix: set it to one of: auto, uvloop, asyncio" in done.stderr
    assert "Traceback" not in done.stderr and "never awaited" not in done.stderr


async def _which_loop(_request: Request) -> Response:
    return PlainTextResponse(await _loop_module())


@pytest.mark.parametrize("choice", ["auto", "asyncio"])
def test_the_servers_run_on_the_same_kind_of_loop(monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    monkeypatch.setenv(event_loop.ENV, choice)
    app = Starlette(routes=[Route("/loop", _which_loop)])
    with ServedApp(app) as served:
        module = httpx.get(served.url + "/loop").text
    assert module.startswith("uvloop") == (choice == "auto" and UVLOOP), module
