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
    assert summary["orders_seeded"] == 12 and summary["orders_in_ledger"] == 12
    assert summary["confirmed"] == 10 and summary["canceled"] == 1
    assert len(summary["errors"]) == 1 and "declined" in next(iter(summary["errors"].values()))
    assert summary["backend_duplicates"] == {} and summary["duplicate_confirmations"] == {}
    assert summary["backend_orders"] == 11  # the failed charge never reached TradeGecko
    assert summary["confirmations_at_source"] == 10
