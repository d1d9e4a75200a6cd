"""The CLI as a user drives it: a config file, sandboxes, sync --once, then inspect and act."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orderbridge.demo.sandboxes import SandboxProcess, running
from orderbridge.demo.scenario import HOUZZ_ACCOUNT, TG_TOKEN

CONFIG = """
[[merchants]]
name = "acme"

[[connections]]
name = "acme-houzz"
merchant = "acme"
type = "houzz_seller"
test_mode = true
base_url = "{houzz}"
credentials = {{ app_id = "{app}", username = "{user}", token = "env:OB_TEST_HOUZZ_TOKEN" }}
rate_limit = {{ calls = 50, period = 1 }}

[[connections]]
name = "acme-tg"
merchant = "acme"
type = "tradegecko"
test_mode = true
base_url = "{tg}"
credentials = {{ access_token = "{tg_token}" }}
rate_limit = {{ calls = 50, period = 1 }}

[[routes]]
source = "acme-houzz"
backend = "acme-tg"
options = {{ ship_method_unmapped = "error" }}
"""


def ob(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORDERBRIDGE_CONFIG": str(config), "OB_TEST_HOUZZ_TOKEN": HOUZZ_ACCOUNT["token"]}
    return subprocess.run([sys.executable, "-m", "orderbridge", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture
def world(tmp_path: Path) -> Any:
    with running(SandboxProcess("houzz", {"accounts": [], "rate_limit": False}),
                 SandboxProcess("tradegecko", {"rate_limit": False})) as (houzz, tg):
        with houzz.admin() as h, tg.admin() as g:
            h.post("/accounts", json=HOUZZ_ACCOUNT).raise_for_status()
            h.post(f"/accounts/{HOUZZ_ACCOUNT['id']}/listings", json=[{"SKU": "CH-1"}]).raise_for_status()
            acct = g.get("/accounts").json()[0]["id"]
            variant = {"sku": "CH-1", "name": "Chair", "stock": {"Main Warehouse": 9}}
            g.post(f"/accounts/{acct}/variants", json=[variant]).raise_for_status()
            h.post(f"/accounts/{HOUZZ_ACCOUNT['id']}/orders/bulk",
                   json={"count": 3, "skus": ["CH-1"], "max_lines": 1}).raise_for_status()
        config = tmp_path / "orderbridge.toml"
        config.write_text(CONFIG.format(houzz=houzz.url, tg=tg.url, app=HOUZZ_ACCOUNT["app_name"],
                                        user=HOUZZ_ACCOUNT["user_name"], tg_token=TG_TOKEN))
        yield config, houzz, tg


def test_sync_inspect_and_fix_from_the_command_line(world: Any) -> None:
    config, _houzz, tg = world
    assert ob("connections", "test", "acme-houzz", config=config).returncode == 0
    result = ob("sync", "--once", "--json", config=config)
    assert result.returncode == 0, result.stderr
    orders = json.loads(ob("orders", "list", "--json", config=config).stdout)
    assert len(orders) == 3
    # Ship methods are unmapped and the route says "error": each order names the method to map.
    assert {o["status"] for o in orders} == {"error"}
    method = orders[0]["error_message"].split("'")[1]
    shown = json.loads(ob("orders", "show", orders[0]["cust_po_no"], "--json", config=config).stdout)
    assert "ship-method" in shown["error_fix"] and shown["timeline"]
    for m in {o["error_message"].split("'")[1] for o in orders}:
        fixed = ob("mappings", "ship-method", "acme", m, "--carrier", "UPS", "--service", "Ground", config=config)
        assert fixed.returncode == 0, fixed.stderr
    assert method
    assert ob("sync", "--once", config=config).returncode == 0
    orders = json.loads(ob("orders", "list", "--json", config=config).stdout)
    assert {o["status"] for o in orders} == {"at_wms"}
    with tg.admin() as g:
        acct = g.get("/accounts").json()[0]["id"]
        assert g.get(f"/accounts/{acct}/orders/counts").json()["duplicates"] == {}
        assert g.get(f"/accounts/{acct}/orders/counts").json()["total"] == 3
    health = json.loads(ob("jobs", "status", "--json", config=config).stdout)
    assert {h["job"] for h in health} >= {"download", "deliver", "workflow"}
    diag = ob("connections", "diagnose", "acme-houzz", "--json", "--all", config=config)
    assert diag.returncode == 0, diag.stderr
    assert {f["state"] for f in json.loads(diag.stdout)} == {"imported"}


def test_wrong_token_is_reported_in_words(world: Any) -> None:
    config, *_ = world
    env_config = config.read_text().replace('access_token = "', 'access_token = "x')
    config.write_text(env_config)
    result = ob("connections", "test", "acme-tg", config=config)
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "Traceback" not in result.stdout + result.stderr
