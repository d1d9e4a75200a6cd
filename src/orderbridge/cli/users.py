"""`orderbridge users ...`: dashboard accounts (an administrator of all merchants, or one merchant's)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orderbridge.cli.common import ConfigOpt, JsonOpt, console, open_hub, print_json
from orderbridge.engine import users

app = typer.Typer(help="Dashboard users and their passwords.", no_args_is_help=True)

PasswordOpt = Annotated[str, typer.Option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, envvar="ORDERBRIDGE_PASSWORD",
    help="The password (asked for when not given; or set ORDERBRIDGE_PASSWORD).", show_default=False)]


@app.command("create")
def create(
    username: str,
    password: PasswordOpt,
    merchant: Annotated[str | None, typer.Option(
        help="Only this merchant's connections, orders, inventory and mappings (default: an administrator "
             "of every merchant).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a dashboard user."""
    hub, _ = open_hub(config)
    user = users.create_user(hub.db, username, password, merchant)
    scope = f"merchant {user.merchant}" if user.merchant else "every merchant (administrator)"
    console.print(f"user {user.username} created; sees {scope}")


@app.command("list")
def list_users(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every dashboard user with its scope and last login."""
    hub, _ = open_hub(config, apply=False)
    found = users.list_users(hub.db)
    if as_json:
        print_json([{"username": u.username, "merchant": u.merchant, "admin": u.is_admin,
                     "created_at": u.created_at, "last_login_at": u.last_login_at} for u in found])
        return
    if not found:
        console.print("no users: create one with `orderbridge users create NAME`")
        return
    table = Table("user", "sees", "last login (UTC)")
    for u in found:
        table.add_row(u.username, u.merchant or "every merchant",
                      u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never")
    console.print(table)


@app.command("passwd")
def passwd(username: str, password: PasswordOpt, config: ConfigOpt = None) -> None:
    """Change a user's password (their open sessions end)."""
    hub, _ = open_hub(config, apply=False)
    users.set_password(hub.db, username, password)
    console.print(f"password of {username} changed")


@app.command("delete")
def delete(username: str, config: ConfigOpt = None) -> None:
    """Delete a user (their open sessions end)."""
    hub, _ = open_hub(config, apply=False)
    users.delete_user(hub.db, username)
    console.print(f"user {username} deleted")
