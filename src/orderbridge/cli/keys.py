"""`orderbridge keys`: API keys of the CartRover-compatible API (/v1)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orderbridge.api.keys import LEVELS, create_key, list_keys, revoke_key
from orderbridge.cli.common import ConfigOpt, JsonOpt, console, err_console, open_hub, print_json

app = typer.Typer(help="API keys of the CartRover-compatible API (/v1): cart, merchant and warehouse levels.",
                  no_args_is_help=True)


@app.command("create")
def create(
    level: Annotated[str, typer.Option("--level", help=f"One of: {', '.join(LEVELS)}.")],
    merchant: Annotated[str | None, typer.Option("--merchant", help="The merchant (merchant keys).")] = None,
    connection: Annotated[list[str] | None, typer.Option(
        "--connection", help="cart: its cartrover_cart connection; merchant: optionally its cartrover_wms "
                             "connection (the warehouse's key); warehouse: each cartrover_wms connection it serves "
                             "(repeat).")] = None,
    label: Annotated[str, typer.Option("--label", help="A note for whoever lists keys later.")] = "",
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key. The api_key is printed once: it is stored hashed and cannot be shown again."""
    hub, _ = open_hub(config)
    made = create_key(hub.db, level, merchant=merchant, connections=connection or [], label=label)
    if as_json:
        print_json({**made.info.as_dict(), "api_key": made.api_key})
        return
    console.print(f"api_user: {made.info.api_user}")
    console.print(f"api_key:  {made.api_key}")
    err_console.print("Store the api_key now: it is not shown again. Clients send it with HTTP Basic auth "
                      "(api_user:api_key) to /v1/...")


@app.command("list")
def list_(
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """Keys with their level, merchant and connections (never the secret)."""
    hub, _ = open_hub(config, apply=False)
    keys = list_keys(hub.db, include_revoked=all_)
    if as_json:
        print_json([k.as_dict() for k in keys])
        return
    table = Table("id", "api_user", "level", "merchant", "connections", "label", "created", "last used", "revoked")
    for k in keys:
        table.add_row(str(k.id), k.api_user, k.level, k.merchant or "", ", ".join(k.connections), k.label,
                      f"{k.created_at:%Y-%m-%d %H:%M}", f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "",
                      f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
    console.print(table)


@app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The api_user (or id) of the key.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: every call with it is refused from now on."""
    hub, _ = open_hub(config, apply=False)
    info = revoke_key(hub.db, key)
    console.print(f"revoked {info.api_user} ({info.level})")
