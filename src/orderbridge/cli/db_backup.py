"""`orderbridge db backup PATH` and `orderbridge db restore PATH`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from orderbridge.cli.common import ConfigOpt, console


def register(db_app: typer.Typer) -> None:
    db_app.command("backup")(db_backup)
    db_app.command("restore")(db_restore)


def _engine(config: Path | None, *, migrate: bool) -> Engine:
    from orderbridge.config import load_config
    from orderbridge.ledger.db import create_engine, open_ledger

    url = load_config(config).database.url
    return open_ledger(url) if migrate else create_engine(url)


def db_backup(path: Annotated[Path, typer.Argument(help="File to write (must not exist).")],
              config: ConfigOpt = None) -> None:
    """Copy the ledger to PATH while orderbridge keeps running (SQLite backup API, or pg_dump)."""
    from orderbridge.ledger.backup import backup

    engine = _engine(config, migrate=False)
    info = backup(engine, path)
    orders = f", {info.orders} orders" if info.orders is not None else ""
    console.print(f"backed up to {info.path} ({info.kind}, schema {info.revision}{orders})", highlight=False)


def db_restore(path: Annotated[Path, typer.Argument(help="A file made by orderbridge db backup.")],
               config: ConfigOpt = None,
               force: Annotated[bool, typer.Option("--force", help="Restore even while a runner holds job leases.")]
               = False) -> None:
    """Replace the ledger with a backup: checks the file's integrity and schema version first, and refuses
    while a runner is working unless --force. Migrates the restored ledger to this version's schema."""
    from orderbridge.ledger.backup import restore
    from orderbridge.ledger.db import current_revision, describe, open_ledger

    engine = _engine(config, migrate=False)
    info = restore(engine, path, force=force)
    upgraded = open_ledger(engine.url.render_as_string(hide_password=False))
    console.print(f"restored {path} into {describe(engine)} (schema {info.revision}); the ledger is now at schema "
                  f"{current_revision(upgraded)}", highlight=False)
    upgraded.dispose()
