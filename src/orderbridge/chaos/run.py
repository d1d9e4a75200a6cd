"""`orderbridge chaos`: the hub (`orderbridge serve`, embedded runner and webhooks) runs in its own
process and is killed with SIGKILL at random moments while orders flow through sandboxes that
inject faults; it is restarted each time. At the end (faults off, run to idle) every order must be
in its backend exactly once and confirmed at its source exactly once, and the ledger must agree."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orderbridge.chaos.world import WIX, Faults, World, toml_document
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.sandbox_kit import free_port
from orderbridge.ledger import schema as t


@dataclass
class ChaosOptions:
    orders: int = 60
    kills: int = 20
    seed: int = 1
    faults: Faults = field(default_factory=Faults)
    kill_after: tuple[float, float] = (0.4, 2.5)  # seconds after each start, drawn at random
    drain_timeout: float = 240.0
    http_timeout: float = 1.0
    database_url: str | None = None
    workdir: Path | None = None


STARTUP_KILLS = 0.15  # this share of the kills land before the hub answers


class HubProcess:
    """`orderbridge serve` in its own process, started again after every kill."""

    def __init__(self, config: Path, port: int, env: dict[str, str], log: Path) -> None:
        self.config, self.port, self.env, self.log = config, port, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orderbridge", "serve", "--config", str(self.config), "--port", str(self.port)],
                stdout=out, stderr=out, env=self.env)
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a power loss or an OOM kill."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()  # reap it, so its pid is gone and its leases are seen as dead at once

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ConfigError(f"the hub exited during start-up (code {self.proc and self.proc.returncode})",
                                  fix=f"see its log: {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise ConfigError(f"the hub did not answer within {timeout:.0f} s", fix=f"see its log: {self.log}")


def _reader(url: str) -> sa.Engine:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return sa.create_engine(url, poolclass=NullPool)


def _statuses(ledger: sa.Engine) -> dict[str, int]:
    with contextlib.suppress(sa.exc.SQLAlchemyError), ledger.connect() as conn:
        return {str(k): int(v) for k, v in conn.execute(
            sa.select(t.orders.c.status, sa.func.count()).group_by(t.orders.c.status))}
    return {}


def _act(world: World) -> None:
    with contextlib.suppress(httpx.HTTPError):
        world.act_as_warehouse()
        world.act_as_holded_user()


def _waves(orders: int, kills: int) -> list[tuple[int, int]]:
    """(Houzz, Wix) orders to place before each of the first two thirds of the kills."""
    wix = max(1, orders // 4)
    houzz = max(orders - wix, 1)
    n = max(1, (kills * 2) // 3)
    return [(houzz * (i + 1) // n - houzz * i // n, wix * (i + 1) // n - wix * i // n) for i in range(n)]


def run_chaos(opts: ChaosOptions, report: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        workdir = opts.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orderbridge-chaos-")))
        workdir.mkdir(parents=True, exist_ok=True)
        world = World(seed=opts.seed)
        stack.callback(world.stop)
        world.start()
        return _run(opts, world, workdir, report)
    raise AssertionError("unreachable")


def _run(opts: ChaosOptions, world: World, workdir: Path, report: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(opts.seed)
    started = time.monotonic()
    url = opts.database_url or f"sqlite:///{workdir / 'ledger.sqlite'}"
    port = free_port()
    world.seed_world(f"http://127.0.0.1:{port}/webhooks/{WIX}")
    config = workdir / "chaos.toml"
    config.write_text(toml_document(world.config(url, opts.http_timeout)), encoding="utf-8")
    env = {**os.environ, "ORDERBRIDGE_DATA_DIR": str(workdir / "data"), "ORDERBRIDGE_LOG_LEVEL": "warning"}
    env.pop("ORDERBRIDGE_DATABASE_URL", None)
    hub = HubProcess(config, port, env, workdir / "hub.log")
    ledger = _reader(url)
    waves = _waves(opts.orders, opts.kills)
    world.set_faults(opts.faults)
    try:
        for i in range(opts.kills):
            hub.start()
            if i < len(waves):
                world.place(*waves[i], rng)
            if rng.random() < STARTUP_KILLS:
                deadline = time.monotonic() + rng.uniform(0.0, 1.0)  # during start-up (migrations, config)
            else:
                hub.wait_ready()
                deadline = time.monotonic() + rng.uniform(*opts.kill_after)
            while time.monotonic() < deadline:
                _act(world)
                time.sleep(0.1)
            alive = hub.alive()
            hub.kill()
            report(f"kill {i + 1}/{opts.kills}" + ("" if alive else " (it had exited by itself)")
                   + f": orders {_statuses(ledger)}")
        for wave in waves[opts.kills:]:  # fewer kills than waves: the rest of the orders now
            world.place(*wave, rng)
        world.set_faults(None)
        report("faults off: running until every order is confirmed")
        drain_started = time.monotonic()
        hub.start()
        hub.wait_ready()
        placed = len(world.houzz_orders) + len(world.wix_orders)
        deadline = time.monotonic() + opts.drain_timeout
        settled = False
        while time.monotonic() < deadline:
            _act(world)
            statuses = _statuses(ledger)
            if statuses.get("confirmed", 0) >= placed and sum(statuses.values()) >= placed:
                settled = True
                break
            time.sleep(0.3)
        drain_seconds = time.monotonic() - drain_started
        hub.stop()
        clean_exit = hub.proc is not None and hub.proc.returncode in (0, -signal.SIGTERM)
    finally:
        hub.kill()
    audit = world.audit(ledger)
    ledger.dispose()
    faults = world.faults_injected()
    figures: dict[str, Any] = {
        "orders": opts.orders, "seed": opts.seed, "kills_survived": opts.kills, "hub_starts": hub.starts,
        "faults_injected": sum(sum(v.values()) for v in faults.values()), "faults_by_sandbox": faults,
        "fault_rates": opts.faults.rates, "settled": settled, "clean_shutdown": clean_exit,
        **audit.as_dict(), "elapsed_seconds": round(time.monotonic() - started, 1),
        "drain_seconds": round(drain_seconds, 1),
        "database": "postgresql" if url.startswith("postgres") else "sqlite",
    }
    figures["passed"] = bool(settled and audit.ok)
    return figures
