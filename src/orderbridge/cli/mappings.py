"""`orderbridge mappings ...`: SKU aliases and ship-method mappings."""

from __future__ import annotations

from typing import Annotated

import typer

from orderbridge.cli.common import ConfigOpt, console, open_hub
from orderbridge.engine.operations import add_alias, add_ship_method

app = typer.Typer(help="SKU aliases and ship-method mappings.", no_args_is_help=True)


@app.command("alias")
def alias(
    merchant: str,
    source_sku: Annotated[str, typer.Argument(help="The SKU as the source sends it.")],
    backend_sku: Annotated[str, typer.Argument(help="The SKU the backend knows.")],
    config: ConfigOpt = None,
) -> None:
    """Add an SKU alias; orders in error because of that SKU are retried."""
    hub, _ = open_hub(config)
    retried = add_alias(hub, merchant, source_sku, backend_sku)
    console.print(f"alias {source_sku} -> {backend_sku} saved; {len(retried)} order(s) will be retried")


@app.command("ship-method")
def ship_method(
    merchant: str,
    source_method: Annotated[str, typer.Argument(help="The shipping method as the source sends it.")],
    carrier: Annotated[str, typer.Option(help="Carrier at the backend.")] = "",
    service: Annotated[str, typer.Option(help="Service at the backend.")] = "",
    config: ConfigOpt = None,
) -> None:
    """Map a source shipping method to a backend carrier and service; affected orders are retried."""
    hub, _ = open_hub(config)
    retried = add_ship_method(hub, merchant, source_method, carrier, service)
    console.print(f"ship method {source_method!r} mapped; {len(retried)} order(s) will be retried")
