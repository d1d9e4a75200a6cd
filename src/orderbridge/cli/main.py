"""The `orderbridge` command."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from orderbridge import __version__
from orderbridge.cli import bench, chaos, connections, db_backup, demo, keys, mappings, ops, orders, sandbox
from orderbridge.cli import distributed as distributed_cli
from orderbridge.cli import users as users_cli
from orderbridge.cli.common import err_console
from orderbridge.connectors.errors import ConnectorError

app = typer.Typer(
    name="orderbridge",
    help="orderbridge moves orders from where they are sold to where they are fulfilled, exactly once, "
    "and brings tracking, stock and cancellations back.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,  # failures are reported by run(), in words
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"orderbridge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", envvar="ORDERBRIDGE_LOG_LEVEL",
                                           help="debug, info, warning or error.")] = "warning",
) -> None:
    from orderbridge.logs import setup_logging

    setup_logging(log_level)


ops.register(app)
db_backup.register(ops.db_app)
distributed_cli.register(app)
app.command("demo")(demo.demo)
app.add_typer(orders.app, name="orders")
app.add_typer(connections.app, name="connections")
app.add_typer(mappings.app, name="mappings")
app.command("sandbox")(sandbox.sandbox)
app.add_typer(users_cli.app, name="users")
app.add_typer(keys.app, name="keys")
app.command("chaos")(chaos.chaos)
app.command("bench")(bench.bench)


def run() -> None:
    """Entry point: every known failure is one clear message and a non-zero exit, never a traceback."""
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n
        if isinstance(code, int) and code:
            sys.exit(code)
    except ConnectorError as exc:
        # Plain text: messages may hold brackets, and must not be wrapped mid-sentence.
        sys.stderr.write(f"error: {exc.message}\n")
        if exc.fix:
            sys.stderr.write(f"fix: {exc.fix}\n")
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
