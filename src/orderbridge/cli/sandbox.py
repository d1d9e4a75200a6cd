"""`orderbridge sandbox NAME`: serve an API emulator."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Annotated, Any

import typer

from orderbridge import event_loop
from orderbridge.cli.common import err_console
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.registry import sandbox_factories


def _parse_options(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: write options as KEY=VALUE (VALUE may be JSON)")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def sandbox(
    name: Annotated[str | None, typer.Argument(help="Which API to emulate (see --list).")] = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Sandbox option KEY=VALUE.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the available sandboxes.")] = False,
    parent: Annotated[int | None, typer.Option(
        help="Stop once the parent process with this id has ended (set by the demo, the bench and the "
             "chaos runs, whose sandboxes must not outlive them however they end).")] = None,
) -> None:
    """Serve an API emulator (sandbox) of an external system on PORT; admin surface under /__sandbox__/."""
    factories = sandbox_factories()
    if list_ or name is None:
        typer.echo("\n".join(sorted(factories)) or "no sandboxes installed")
        return
    if name not in factories:
        raise ConfigError(f"no sandbox named {name!r}", fix=f"use one of: {', '.join(sorted(factories))}")
    import uvicorn

    app_ = factories[name](_parse_options(option or []))
    err_console.print(f"{name} sandbox on http://{host}:{port} (admin: /__sandbox__/)")
    from orderbridge.connectors.sandbox_kit import KEEP_ALIVE_SECONDS
    from orderbridge.gc_tuning import tune_for_long_run

    tune_for_long_run()
    if parent is not None:
        _stop_with(parent)

    uvicorn.run(app_, host=host, port=port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_SECONDS,
                loop=event_loop.loop_name())


PARENT_CHECK_SECONDS = 1.0


def _stop_with(parent: int) -> None:
    """Ask this process to stop (SIGTERM: uvicorn's graceful shutdown) once ``parent`` is no
    longer its parent: it ended, however (killed, crashed), and this process was handed to another."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orderbridge-parent-watch", daemon=True).start()
