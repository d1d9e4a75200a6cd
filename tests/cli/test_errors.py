"""Bad configuration, unknown connector types, unreachable databases: one clear message, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def orderbridge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orderbridge", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def assert_clean_failure(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "ob.toml"
    cfg.write_text('[[merchants]]\nname = "acme"\nnmae = "typo"\n')
    assert_clean_failure(orderbridge("sync", "--once", "--config", str(cfg)), str(cfg), "merchants.0.nmae",
                         "unknown key")


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "ob.toml"
    cfg.write_text("[[merchants]\n")
    assert_clean_failure(orderbridge("orders", "list", "--config", str(cfg)), "not valid TOML", "line 1")


def test_missing_config_file(tmp_path: Path) -> None:
    assert_clean_failure(orderbridge("sync", "--once", "--config", str(tmp_path / "nope.toml")), "does not exist")


def test_unknown_connector_type_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = tmp_path / "ob.toml"
    cfg.write_text('[[merchants]]\nname = "acme"\n[[connections]]\nname = "x"\nmerchant = "acme"\n'
                   'type = "shopifyy"\n')
    assert_clean_failure(orderbridge("sync", "--once", "--config", str(cfg)), "unknown connector type 'shopifyy'",
                         "fix:")


def test_undeclared_merchant_and_route_to_missing_connection(tmp_path: Path) -> None:
    cfg = tmp_path / "ob.toml"
    cfg.write_text('[[merchants]]\nname = "acme"\n[[routes]]\nsource = "a"\nbackend = "b"\n')
    assert_clean_failure(orderbridge("sync", "--once", "--config", str(cfg)), "routes[0].source", "no connection")


def test_env_reference_that_is_not_set(tmp_path: Path) -> None:
    cfg = tmp_path / "ob.toml"
    cfg.write_text('[[merchants]]\nname = "env:OB_SURELY_UNSET_VAR"\n')
    assert_clean_failure(orderbridge("sync", "--once", "--config", str(cfg)), "OB_SURELY_UNSET_VAR", "is not set")


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none", "mysql://x@localhost/db", "not a url"])
def test_database_url_that_cannot_be_used(url: str) -> None:
    result = orderbridge("orders", "list", env={"ORDERBRIDGE_DATABASE_URL": url})
    assert_clean_failure(result, "error:", "fix:")


def test_help_on_every_subcommand() -> None:
    for args in (["--help"], ["sync", "--help"], ["orders", "list", "--help"], ["orders", "show", "--help"],
                 ["connections", "diagnose", "--help"], ["alerts", "list", "--help"], ["db", "upgrade", "--help"],
                 ["mappings", "alias", "--help"], ["sandbox", "--help"], ["jobs", "status", "--help"]):
        result = orderbridge(*args)
        assert result.returncode == 0 and "Usage" in result.stdout, (args, result.stderr)


def test_empty_ledger_commands_work() -> None:
    assert orderbridge("db", "upgrade").returncode == 0
    result = orderbridge("orders", "list", "--json")
    assert result.returncode == 0 and result.stdout.strip() == "[]"
