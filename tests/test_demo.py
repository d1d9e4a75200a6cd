"""The README's first command, as a newcomer runs it (with --until-done and --json to check it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from orderbridge.connectors.sandbox_kit import free_port


def test_demo_runs_to_completion_without_duplicates() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orderbridge", "demo", "--orders", "12", "--until-done", "--json",
         "--port", str(free_port()), "--timeout", "240"],
        capture_output=True, text=True, timeout=300, env={**os.environ})
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["finished"] is True
    # 12 Houzz -> TradeGecko orders, and 3 Wix -> Holded ones
    assert summary["orders_seeded"] == 15 and summary["orders_in_ledger"] == 15
    assert summary["confirmed"] == 13 and summary["canceled"] == 1
    assert len(summary["errors"]) == 1 and "declined" in next(iter(summary["errors"].values()))
    assert summary["backend_duplicates"] == {} and summary["duplicate_confirmations"] == {}
    assert summary["backend_orders"] == 11  # the failed charge never reached TradeGecko
    assert summary["confirmations_at_source"] == 10
    books = summary["wix_holded"]
    assert books["confirmed"] == 3 and books["holded_documents"] == 3 and books["wix_fulfillments"] == 3
    assert books["wix_orders_with_several_fulfillments"] == {}
    assert books["arrived_by_webhook"] >= 1  # near real time; polling is the safety net
