"""`orderbridge bench` end to end: a small run through the hub and the floor, figures read from the sandboxes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from benchmarks.run import prepare_ledger, wait_healthy
from benchmarks.runner import HubSpec, ProcessRunner, workers

from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import free_port
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
    assert "orders / s end to end" in result.stdout and "sandboxes CPU s / 1,000 orders" in result.stdout
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
    at = run["confirmed_at_seconds"]
    assert 0 <= at["first"] <= at["half"] <= at["all"] <= run["seconds"] + 1.0


def test_small_bench_on_sqlite_with_the_floor(tmp_path: Path) -> None:
    report = _bench(tmp_path)
    hub, floor = report["orderbridge"], report["floor"]
    _exactly_once(hub, 40)
    _exactly_once(floor, 40)
    assert hub["hub"]["cpu_seconds"] > 0 and hub["hub"]["peak_rss_mb"] > 20
    assert hub["hub"]["cpu_seconds_per_1000_orders"] == pytest.approx(hub["hub"]["cpu_seconds"] * 25, rel=0.01)
    # The floor makes only the calls the lifecycle needs: no reads before writes. (The hub reads an
    # order only to explain a refusal or before a retry, so it may make none in a clean run.)
    assert "houzz getOrder" not in floor["calls"]["per_order_by_kind"]
    assert floor["calls"]["per_order"] < hub["calls"]["per_order"]
    assert report["ratio_to_floor"] == pytest.approx(hub["seconds"] / floor["seconds"], rel=0.01)
    # The floor ran in a process of its own, its CPU measured as the hub's is.
    assert 0 < floor["client"]["cpu_seconds"] and 20 < floor["client"]["peak_rss_mb"]
    assert report["cpu_ratio_to_floor"] == pytest.approx(hub["hub"]["cpu_seconds"] / floor["client"]["cpu_seconds"],
                                                         rel=0.01)
    # Both sides' runs made the sandboxes work, and the table shows it.
    assert hub["sandbox_cpu_seconds_per_1000_orders"] > 0 and floor["sandbox_cpu_seconds_per_1000_orders"] > 0
    assert "ledger_server_cpu_seconds_per_1000_orders" not in hub  # SQLite: the ledger's work is the hub's own
    # So did the bench's own process (it plays the warehouse for both), and the machine was busy.
    for side in (hub, floor):
        assert side["bench_cpu_seconds_per_1000_orders"] > 0
        assert 0 < side["machine_busy_share"] <= 1


def test_rounds_alternate_hub_and_floor_and_report_the_median_ratio(tmp_path: Path) -> None:
    report = _bench(tmp_path, "--rounds", "3")
    rounds = report["rounds"]
    assert len(rounds) == 3
    for r in rounds:  # every round's hub ran on a ledger of its own: all its orders got through, once
        assert r["finished"] is True and r["lost"] == 0 and r["duplicated"] == 0 and r["problems"] == []
        assert r["ratio"] == pytest.approx(r["orderbridge_seconds"] / r["floor_seconds"], rel=0.01)
    ratios = sorted(r["ratio"] for r in rounds)
    assert report["ratio_to_floor"] == ratios[1] and report["ratio_range"] == [ratios[0], ratios[2]]
    assert report["cpu_ratio_to_floor"] == sorted(r["cpu_ratio"] for r in rounds)[1]
    # The detailed figures are the median round's.
    shown = rounds[report["figures_of_round"] - 1]
    assert shown["ratio"] == ratios[1]
    assert report["orderbridge"]["seconds"] == shown["orderbridge_seconds"]
    assert report["floor"]["seconds"] == shown["floor_seconds"]
    _exactly_once(report["orderbridge"], 40)
    _exactly_once(report["floor"], 40)


def test_what_fails_a_bench_counts_every_round_and_loses_nothing_not_yet_made() -> None:
    from benchmarks.report import failures, run_problems

    clean = {"finished": True, "lost_orders": 0, "lost_confirmations": 0, "duplicated_orders": 0,
             "duplicated_confirmations": 0}
    assert run_problems("hub", clean) == []
    assert run_problems("hub", {**clean, "duplicated_orders": 2}) == ["hub: 2 duplicated orders"]
    unfinished = {**clean, "finished": False, "lost_orders": 7}  # not made yet: not counted as lost
    assert run_problems("hub", unfinished) == ["hub did not get every order through before --timeout"]
    assert run_problems("hub", unfinished, time_boxed=True) == []  # --real-limits stops on the clock
    single = {"options": {"real_limits": False}, "orderbridge": clean, "floor": {**clean, "lost_confirmations": 1}}
    assert failures(single) == ["floor: 1 lost confirmations"]
    # With rounds, a round other than the one shown fails the bench too.
    rounds = {**single, "floor": clean, "rounds": [{"problems": []}, {"problems": ["round 2, floor: 1 lost orders"]}]}
    assert failures(rounds) == ["round 2, floor: 1 lost orders"]


def test_rounds_need_the_floor(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "orderbridge", "bench", "--orders", "5", "--rounds", "2",
                             "--no-floor", "--out", str(tmp_path / "none.json")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--rounds compares the hub with the floor" in result.stderr and "fix:" in result.stderr
    assert not (tmp_path / "none.json").exists()  # refused before anything ran


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.mark.postgres
def test_small_bench_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    report = _bench(tmp_path, "--database-url", pg_url, "--no-floor")
    _exactly_once(report["orderbridge"], 40)
    assert "floor" not in report
    # The server on this machine worked for the run's ledger, and that is reported beside the hub's CPU.
    assert report["orderbridge"]["ledger_server_cpu_seconds_per_1000_orders"] > 0


@pytest.mark.postgres
def test_small_bench_with_distributed_workers(tmp_path: Path, pg_url: str) -> None:
    report = _bench(tmp_path, "--database-url", pg_url, "--no-floor", "--runner", "workers", "--workers", "2")
    run = report["orderbridge"]
    _exactly_once(run, 40)
    assert run["hub"]["processes"] == 2 and run["hub"]["killed"] == 0  # both workers stopped and reported
    assert report["options"]["runner"] == "workers" and report["options"]["workers"] == 2


def test_distributed_workers_need_postgresql(tmp_path: Path) -> None:
    for extra in ([], ["--database-url", f"sqlite:///{tmp_path / 'ledger.sqlite'}"]):
        result = subprocess.run([sys.executable, "-m", "orderbridge", "bench", "--orders", "5", "--runner", "workers",
                                 "--out", str(tmp_path / "never.json"), *extra],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode != 0, result.stdout
        assert "needs PostgreSQL" in result.stderr and "fix: add --database-url postgresql://" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "never.json").exists() and not (tmp_path / "ledger.sqlite").exists()


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by its new parent counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _registered(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass('procrastinate_workers')")).scalar() is None:
                return 0
            return int(conn.execute(sa.text("SELECT count(*) FROM procrastinate_workers")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_the_distributed_runner_stops_its_workers_and_leaves_no_process(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_DATA_DIR", str(tmp_path))
    cfg = AppConfig.model_validate({"merchants": [{"name": "bench"}]})
    prepare_ledger(pg_url, cfg)
    runner = workers(2)
    assert isinstance(runner, ProcessRunner)
    port = free_port()
    runner.start(HubSpec(pg_url, cfg.runner.model_dump(), port))
    pids = runner.pids()
    try:
        asyncio.run(wait_healthy(f"http://127.0.0.1:{port}", runner))
        deadline = time.monotonic() + 120
        while _registered(pg_url) < 2:  # both Procrastinate workers are running
            assert runner.alive() and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        usage = runner.stop()
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)
    assert usage.processes == 2 and usage.killed == 0  # each stopped by itself, in time, and reported
    assert usage.cpu_seconds > 0
    assert _registered(pg_url) == 0  # the workers unregistered: a graceful stop, not a kill


async def _stuck(spec: HubSpec, stop: asyncio.Event) -> None:
    """Process 0 stops when told; process 1's event loop is stuck (as in a call that never returns)
    and SIGTERM is handled but never acted upon, so only SIGKILL ends it."""
    if spec.index == 0:
        Path(spec.database_url, "ready").touch()  # noqa: ASYNC240
        await stop.wait()
        return
    signal.signal(signal.SIGTERM, lambda *_: None)
    Path(spec.database_url, "stuck").touch()  # noqa: ASYNC240 - here the "database URL" is a directory to say so
    time.sleep(3600)  # noqa: ASYNC251 - blocking on purpose: the stuck loop


@pytest.mark.timeout(120)
def test_a_process_that_does_not_stop_is_killed_and_the_others_still_report(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = ProcessRunner("stuck", _stuck, 2)
    runner.start(HubSpec(str(tmp_path), {}, 0))
    pids = runner.pids()
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "stuck").exists():
            assert runner.alive() and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        with caplog.at_level(logging.WARNING, logger="orderbridge.bench"):
            usage = runner.stop(within=3)
    assert all(_gone(pid) for pid in pids)
    assert usage.processes == 1 and usage.killed == 1 and usage.cpu_seconds > 0
    assert f"pid {pids[1]}) did not stop within 3 s and was killed" in caplog.text


@pytest.mark.timeout(120)
def test_hub_processes_stop_when_the_bench_dies(tmp_path: Path) -> None:
    # A bench killed outright (SIGKILL: no cleanup runs) leaves its hub processes without a parent.
    script = (
        "import os, signal\n"
        "from benchmarks.runner import HubSpec, ProcessRunner\n"
        "from tests.benchmarks.test_bench import _stuck\n"
        "if __name__ == '__main__':\n"
        "    runner = ProcessRunner('orphans', _stuck, 1)\n"
        f"    runner.start(HubSpec({str(tmp_path)!r}, {{}}, 0))\n"
        "    print(*runner.pids(), flush=True)\n"
        f"    while not os.path.exists({str(tmp_path / 'ready')!r}): pass\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    (tmp_path / "bench.py").write_text(script)
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(tmp_path / "bench.py")], capture_output=True, text=True,
                            timeout=60, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == -signal.SIGKILL, result.stderr
    pids = [int(p) for p in result.stdout.split()]
    deadline = time.monotonic() + 60
    while not all(_gone(pid) for pid in pids):  # they notice the bench is gone and stop
        assert time.monotonic() < deadline, f"hub processes {pids} outlived the bench"
        time.sleep(0.2)
    assert len(pids) == 1


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


PEAK_PROBE = """
import json, resource
from benchmarks.runner import own_peak_rss_mb
print(json.dumps({"ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "own_mb": own_peak_rss_mb()}))
"""


def test_a_hub_process_reports_its_own_peak_memory_not_the_one_of_the_process_that_started_it() -> None:
    held = bytearray(300 * 2**20)
    held[::4096] = b"x" * len(range(0, len(held), 4096))  # resident: every page touched
    out = subprocess.run([sys.executable, "-c", PEAK_PROBE], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout
    del held
    seen = json.loads(out)
    if not Path("/proc/self/status").exists():  # no VmHWM to read (macOS): getrusage is all there is
        assert seen["own_mb"] == seen["ru_maxrss_mb"]
        return
    assert seen["ru_maxrss_mb"] > 300, seen  # what getrusage says (Linux): this test process's 300 MB
    assert 5 < seen["own_mb"] < 150, seen


def test_a_floor_that_cannot_reach_an_api_fails_the_bench_saying_why() -> None:
    from benchmarks.run import BenchOptions, new_world, run_floor, stop_world

    opts = BenchOptions(orders=4, sources=1, timeout=60)
    world = new_world(opts)
    try:
        port = world.houzz.url.rsplit(":", 1)[1]
        world.houzz.stop()  # the floor's process finds nothing listening at the Houzz address
        with pytest.raises(RuntimeError, match=rf"the floor failed: TransientError: cannot connect.*:{port}\b"):
            asyncio.run(run_floor(opts, world, lambda progress: None))
    finally:
        stop_world(world)
