"""A real process killed with SIGKILL between recording the intent and recording the result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger
from tests.conftest import ShopAdmin

ROOT = Path(__file__).resolve().parents[2]


def run(db_url: str, url: str, mode: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "tests.support.run_sync", db_url, url, mode], cwd=ROOT,
                          env={**os.environ}, capture_output=True, timeout=120)


def test_sigkill_between_intent_and_result_delivers_exactly_once(db_url: str, admin: ShopAdmin) -> None:
    for i in range(3):
        admin.order(f"K{i}")
    first = run(db_url, admin.url, "crash")
    assert first.returncode == -signal.SIGKILL, first.stderr.decode()[-2000:]
    # It died right after the first create answered (others may have been in flight with it).
    assert 1 <= len(admin.state()["wms"]["creates"]) <= 3
    engine = open_ledger(db_url)
    with engine.connect() as conn:
        in_flight = conn.execute(sa.select(sa.func.count()).select_from(t.deliveries).where(
            t.deliveries.c.state == "in_flight")).scalar()
    assert in_flight >= 1  # the intent was recorded, the result never was
    second = run(db_url, admin.url, "normal")
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    assert sorted(admin.state()["wms"]["creates"]) == ["PO-K0", "PO-K1", "PO-K2"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.orders.c.status)).scalars().all()
        found = conn.execute(sa.select(sa.func.count()).select_from(t.order_events).where(
            t.order_events.c.message.like("%found at the backend after an interrupted attempt%"))).scalar()
    assert rows == ["at_wms"] * 3
    assert found >= 1
    engine.dispose()
