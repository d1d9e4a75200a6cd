"""`orderbridge chaos` at CI size: the hub SIGKILLed 20 times while faulty sandboxes answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _pg_database

ROOT = Path(__file__).resolve().parents[2]


def chaos(tmp_path: Path, *args: str, timeout: float = 300) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-m", "orderbridge", "chaos", "--json", "--workdir", str(tmp_path / "run"),
                             "--out", str(tmp_path / "figures.json"), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ})
    log = tmp_path / "run" / "hub.log"
    detail = result.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    assert result.stdout.strip(), detail
    figures = json.loads(result.stdout)
    assert json.loads((tmp_path / "figures.json").read_text()) == figures
    assert result.returncode == (0 if figures["passed"] else 1), detail
    return dict(figures)


@pytest.mark.slow
def test_twenty_kills_under_faults_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    figures = chaos(tmp_path, "--orders", "60", "--kills", "20", "--seed", "7", "--kill-max", "1.2")
    problems = [*figures["lost"], *figures["duplicated"], *figures["disagreements"]]  # type: ignore[misc]
    assert figures["passed"] is True, problems
    assert figures["kills_survived"] == 20 and figures["hub_starts"] == 21
    assert figures["orders_placed"] == 60 and figures["orders_in_ledger"] == 60 and figures["orders_confirmed"] == 60
    assert figures["orders_lost"] == 0 and figures["orders_duplicated"] == 0
    kinds = {kind for by_kind in figures["faults_by_sandbox"].values() for kind in by_kind}  # type: ignore[attr-defined]
    assert {"500", "timeout_after", "malformed", "429"} <= kinds, kinds
    assert figures["faults_injected"] >= 20


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.mark.postgres
@pytest.mark.slow
def test_kills_on_postgresql_lose_and_duplicate_nothing(tmp_path: Path, pg_url: str) -> None:
    figures = chaos(tmp_path, "--orders", "16", "--kills", "5", "--seed", "3", "--kill-max", "1.2",
                    "--database-url", pg_url)
    assert figures["passed"] is True, [*figures["lost"], *figures["duplicated"], *figures["disagreements"]]  # type: ignore[misc]
    assert figures["database"] == "postgresql" and figures["kills_survived"] == 5
    assert figures["orders_confirmed"] == 16 and figures["orders_lost"] == 0 and figures["orders_duplicated"] == 0
