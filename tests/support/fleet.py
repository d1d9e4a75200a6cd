"""A fleet of test shop/WMS pairs in their own process, and a config for them.

Shared by the scale-out test and the scale-out benchmark: N merchants, each with a shop (source)
and a WMS (backend) of its own, so each has its own external accounts and call budgets.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support import shop

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def shop_fleet(count: int) -> Iterator[list[str]]:
    """Start ``count`` shop/WMS emulators in one separate process; yield their base URLs."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.shop_fleet", str(count)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the shop fleet did not start")
        yield list(json.loads(line))
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def write_config(path: Path, urls: list[str], *, database_url: str | None = None, calls_per_second: int = 40,
                 schedule_seconds: float = 1.0) -> Path:
    """One merchant per URL: shopN -> wmsN, each account limited to ``calls_per_second``."""
    # Polling where nothing else tells us of new work; deliver and upload are queued by the writes
    # that create their work, so their schedule is only the safety net.
    fast = {"download": schedule_seconds, "upload": 10.0, "workflow": 10.0}
    lines = []
    if database_url:
        lines += ["[database]", f"url = {json.dumps(database_url)}", ""]
    lines += ["[runner]", "overlap_seconds = 2", "lease_seconds = 30", "concurrency = 8", ""]
    for i, url in enumerate(urls, 1):
        rate = f"rate_limit = {{ calls = {calls_per_second}, period = 1 }}"
        creds = f'credentials = {{ token = "{shop.TOKEN}" }}'
        lines += [
            "[[merchants]]", f'name = "m{i}"', "",
            "[[connections]]", f'name = "shop{i}"', f'merchant = "m{i}"', 'type = "test_shop"', "test_mode = true",
            f"base_url = {json.dumps(url)}", creds, rate,
            "schedule = { " + ", ".join(f"{k} = {v}" for k, v in fast.items()) + " }", "",
            "[[connections]]", f'name = "wms{i}"', f'merchant = "m{i}"', 'type = "test_wms"', "test_mode = true",
            f"base_url = {json.dumps(url)}", creds, rate,
            f"schedule = {{ deliver = 10.0, shipments = {schedule_seconds} }}", "",
            "[[routes]]", f'source = "shop{i}"', f'backend = "wms{i}"', "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def order_body(oid: str) -> dict[str, Any]:
    return {"id": oid, "number": f"PO-{oid}", "created": "2026-11-20T10:00:00+00:00", "name": "Ada Lovelace",
            "street": "1 Main St", "city": "Springfield", "lines": [{"sku": "SKU-1", "qty": 1}]}


def seed(client: httpx.Client, url: str, oids: list[str]) -> None:
    client.post(url + "/__sandbox__/shop/orders", json=[order_body(o) for o in oids]).raise_for_status()


def state(client: httpx.Client, url: str) -> dict[str, Any]:
    return dict(client.get(url + "/__sandbox__/state", timeout=30).json())


def auto_ship(client: httpx.Client, url: str) -> None:
    """The WMS's warehouse ships each order the moment it is created there."""
    client.post(url + "/__sandbox__/wms/auto_ship", json={"enabled": True}).raise_for_status()


def confirmed_count(client: httpx.Client, urls: list[str]) -> int:
    return sum(len(state(client, u)["shop"]["confirmations"]) for u in urls)


def busiest_second(calls: list[dict[str, Any]], prefix: str) -> tuple[int, int]:
    """(the most calls in one 1-second window, that window's start) for calls whose path starts with prefix.

    Counted by arrival, as an API's rate limit counts them (not by when the emulator, busy with
    other requests, got round to answering).
    """
    per_second = Counter(int(c["arrived"]) for c in calls if c["path"].startswith(prefix))
    if not per_second:
        return 0, 0
    second, n = per_second.most_common(1)[0]
    return n, second


def calls(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    return list(client.get(url + "/__sandbox__/calls", timeout=60).json())
