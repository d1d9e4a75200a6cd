"""`orderbridge bench` end to end: a small run through the hub and the floor, figures read from the sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _pg_database

FIGURES = ("finished", "seconds", "orders_per_second", "latency_seconds", "calls", "lost_orders",
           "duplicated_orders", "confirmed_at_source", "lost_confirmations", "duplicated_confirmations",
           "inventory_listings_out_of_sync")


def _bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "orderbridge", "bench", "--orders", "40", "--sources", "2",
                             "--out", str(out), "--timeout", "120", *args],
                            capture_output=True, text=True, timeout=240, env={**os.environ})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "orders / s end to end" in result.stdout  # the table
    return json.loads(out.read_text())


def _exactly_once(run: dict, orders: int) -> None:
    assert run["finished"] is True
    for figure in FIGURES:
        assert figure in run, figure
    assert run["lost_orders"] == 0 and run["duplicated_orders"] == 0
    assert run["lost_confirmations"] == 0 and run["duplicated_confirmations"] == 0
    assert run["backend_orders"] == orders and run["confirmed_at_source"] == orders
    assert run["inventory_listings_out_of_sync"] == 0
    kinds = run["calls"]["per_order_by_kind"]
    # Every order is created once in TradeGecko and confirmed once (Ship) after Process and Charge.
    assert kinds["tradegecko POST /orders"] == 1.0 and kinds["houzz updateOrder"] == 3.0
    lat = run["latency_seconds"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]


def test_small_bench_on_sqlite_with_the_floor(tmp_path: Path) -> None:
    report = _bench(tmp_path)
    hub, floor = report["orderbridge"], report["floor"]
    _exactly_once(hub, 40)
    _exactly_once(floor, 40)
    assert hub["hub"]["cpu_seconds"] > 0 and hub["hub"]["peak_rss_mb"] > 20
    assert hub["hub"]["cpu_seconds_per_1000_orders"] == pytest.approx(hub["hub"]["cpu_seconds"] * 25, rel=0.01)
    # The floor makes only the calls the lifecycle needs: no re-reads before writes.
    assert "houzz getOrder" in hub["calls"]["per_order_by_kind"]
    assert "houzz getOrder" not in floor["calls"]["per_order_by_kind"]
    assert floor["calls"]["per_order"] < hub["calls"]["per_order"]
    assert report["ratio_to_floor"] == pytest.approx(hub["seconds"] / floor["seconds"], rel=0.01)


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.mark.postgres
def test_small_bench_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    report = _bench(tmp_path, "--database-url", pg_url, "--no-floor")
    _exactly_once(report["orderbridge"], 40)
    assert "floor" not in report


def test_latency_mode_reports_polling_and_webhooks(tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    result = subprocess.run([sys.executable, "-m", "orderbridge", "bench", "--latency", "--duration", "4",
                             "--rate", "2", "--out", str(out)],
                            capture_output=True, text=True, timeout=180, env={**os.environ})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    by_mode = json.loads(out.read_text())["latency"]["by_mode"]
    assert set(by_mode) == {"polling (Houzz, 1 s)", "webhooks (Wix)"}
    for lat in by_mode.values():
        assert lat["orders"] >= 3 and lat["missing"] == 0 and lat["delivered"] == lat["orders"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 30
