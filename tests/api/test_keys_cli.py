"""`orderbridge keys create|list|revoke` as a user runs them, against the ledger they configure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from orderbridge.api.keys import authenticate
from orderbridge.cli.main import app
from orderbridge.ledger.db import open_ledger

CONFIG = """
[database]
url = "{url}"

[[merchants]]
name = "acme"

[[connections]]
name = "acme-cart"
merchant = "acme"
type = "cartrover_cart"

[[connections]]
name = "acme-wms"
merchant = "acme"
type = "cartrover_wms"
"""


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_keys_create_list_revoke(tmp_path: Path, db_url: str) -> None:
    cfg = tmp_path / "ob.toml"
    cfg.write_text(CONFIG.format(url=db_url))
    made = json.loads(run("keys", "create", "--level", "cart", "--connection", "acme-cart", "--label", "web shop",
                          "--json", "-c", str(cfg)))
    wms = json.loads(run("keys", "create", "--level", "warehouse", "--connection", "acme-wms", "--json",
                         "-c", str(cfg)))
    db = open_ledger(db_url)
    try:
        key, _ = authenticate(db, made["api_user"], made["api_key"])
        assert key is not None and key.level == "cart"
        listed = json.loads(run("keys", "list", "--json", "-c", str(cfg)))
        assert [(k["api_user"], k["connections"]) for k in listed] == [
            (made["api_user"], ["acme-cart"]), (wms["api_user"], ["acme-wms"])]
        assert all("api_key" not in k and "secret_hash" not in k for k in listed)
        assert "revoked" in run("keys", "revoke", made["api_user"], "-c", str(cfg))
        assert authenticate(db, made["api_user"], made["api_key"]) == (None, "this API key was revoked")
        assert [k["api_user"] for k in json.loads(run("keys", "list", "--json", "-c", str(cfg)))] == [wms["api_user"]]
    finally:
        db.dispose()


def test_keys_create_explains_a_wrong_level(tmp_path: Path) -> None:
    cfg = tmp_path / "ob.toml"
    cfg.write_text(CONFIG.format(url=f"sqlite:///{tmp_path / 'l.sqlite'}"))
    done = subprocess.run([sys.executable, "-m", "orderbridge", "keys", "create", "--level", "cart", "--connection",
                           "acme-wms", "-c", str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "error: connection 'acme-wms' is a cartrover_wms connection" in done.stderr
    assert "fix: pick a connection of type cartrover_cart" in done.stderr
