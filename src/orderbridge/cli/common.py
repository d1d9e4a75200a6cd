"""What every command shares: the config option, opening the hub, printing errors."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from orderbridge import event_loop
from orderbridge.config import AppConfig, load_config
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger.db import open_ledger, setup_lock

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="ORDERBRIDGE_CONFIG", help="TOML configuration file.",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_hub(config: Path | None, *, apply: bool = True) -> tuple[Hub, AppConfig]:
    cfg = load_config(config)
    engine = open_ledger(cfg.database.url)
    hub = Hub(db=engine, runner=cfg.runner, http_timeout=cfg.runner.http_timeout_seconds)
    if apply:
        with setup_lock(engine):
            warnings = apply_config(hub, cfg)
        for warning in warnings:
            err_console.print(f"[yellow]warning:[/] {warning}")
    return hub, cfg


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return event_loop.run(coro)


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    return str(o)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_default))
