"""A hub process killed with SIGKILL after JOOR marked its orders exported and before the ledger stored
them: the next download still imports every order, once."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from joor_run_download import config
from joor_support import Admin
from tests.support.engine import sync, wait_for

from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def test_sigkill_between_export_mark_and_commit_loses_no_order(db_url: str, url: str, admin: Admin) -> None:
    acct = admin.account()
    ids = admin.generate(acct["id"], 25)
    # The recovery read hangs, so the process is surely between JOOR's mark and the ledger's commit.
    admin.faults(match="export_status=3", next=[{"kind": "timeout", "count": 1}], hang_seconds=3)
    seen = admin.last_seq()
    proc = subprocess.Popen([sys.executable, str(HERE / "joor_run_download.py"), db_url, url, acct["token"]],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: any(c["fault"] == "timeout" for c in admin.calls(seen)) or proc.poll() is not None,
                 timeout=30)
        assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    admin.clear_faults()
    assert all(s["export_state"] == "success" for s in admin.states(acct["id"]).values())  # JOOR marked all
    engine = open_ledger(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 0  # stored none

    cfg = config(url, acct["token"])
    hub = Hub(db=engine, runner=cfg.runner, http_timeout=5)
    apply_config(hub, cfg)
    sync(hub, "joor")
    with engine.connect() as conn:
        stored: list[Any] = list(conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status)))
    assert sorted(r.external_id for r in stored) == sorted(ids)  # each once (unique per connection)
    assert {r.status for r in stored} == {"new"}
    assert all(s["export_count"] == 1 for s in admin.states(acct["id"]).values())
    engine.dispose()
