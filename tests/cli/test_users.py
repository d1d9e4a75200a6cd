"""`orderbridge users`: create, list, change a password, delete; clear errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orderbridge.cli.main import app
from orderbridge.connectors.errors import ConfigError
from orderbridge.engine.users import authenticate
from orderbridge.ledger.db import open_ledger


def ob(*args: str, db_url: str, password: str | None = None, stdin: str = "") -> Any:
    """Run the command in this process (start-up of a new one is slow); errors come back as exceptions."""
    env = {"ORDERBRIDGE_DATABASE_URL": db_url, "ORDERBRIDGE_PASSWORD": password}
    return CliRunner().invoke(app, list(args), input=stdin, env=env, catch_exceptions=True)


def test_users_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "orderbridge.toml"
    config.write_text('[[merchants]]\nname = "acme"\n')
    made = ob("users", "create", "admin", db_url=db_url, password="first-password")
    assert made.exit_code == 0 and "every merchant" in made.stdout, made.output
    scoped = ob("users", "create", "ann", "--merchant", "acme", "--config", str(config), db_url=db_url,
                password="ann-password")
    assert scoped.exit_code == 0 and "sees merchant acme" in scoped.stdout, scoped.output

    listed = json.loads(ob("users", "list", "--json", db_url=db_url).stdout)
    assert [(u["username"], u["merchant"], u["admin"]) for u in listed] == [("admin", None, True),
                                                                            ("ann", "acme", False)]
    assert "first-password" not in json.dumps(listed)

    # The password is asked for twice when not given.
    changed = ob("users", "passwd", "admin", db_url=db_url, stdin="second-password\nsecond-password\n")
    assert changed.exit_code == 0, changed.output
    db = open_ledger(db_url)
    try:
        assert authenticate(db, "admin", "second-password") is not None
        assert authenticate(db, "admin", "first-password") is None
    finally:
        db.dispose()

    for args, password, message in [
        (("users", "create", "admin"), "another-password", "already exists"),
        (("users", "create", "bob"), "short", "too short"),
        (("users", "create", "carl", "--merchant", "nobody"), "long-enough-1", "no merchant named 'nobody'"),
        (("users", "create", "bad name!"), "long-enough-1", "not a valid user name"),
        (("users", "delete", "nobody"), None, "no user named 'nobody'"),
    ]:
        r = ob(*args, db_url=db_url, password=password)
        assert isinstance(r.exception, ConfigError) and message in r.exception.message and r.exception.fix, args

    assert ob("users", "delete", "ann", db_url=db_url).exit_code == 0
    assert [u["username"] for u in json.loads(ob("users", "list", "--json", db_url=db_url).stdout)] == ["admin"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_explains_how_to_create_the_first_user(db_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "orderbridge", "serve", "--port", "0", "--no-runner"],
                            env={**os.environ, "ORDERBRIDGE_DATABASE_URL": db_url}, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(10)
    assert "dashboard: http://" in lines[0]
    assert "no dashboard user yet" in lines[1] and "orderbridge users create admin" in lines[1]
    # As a command, a bad input is one error line and one fix line.
    r = subprocess.run([sys.executable, "-m", "orderbridge", "users", "create", "bob"], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "ORDERBRIDGE_DATABASE_URL": db_url,
                                                   "ORDERBRIDGE_PASSWORD": "short"})
    assert r.returncode == 2 and r.stderr.splitlines() == ["error: the password is too short (5 characters)",
                                                            "fix: use at least 8 characters"], r.stderr
