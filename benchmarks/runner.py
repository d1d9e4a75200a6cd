"""How the benchmark runs the hub: in processes of its own, so its CPU and memory are its own.

A runner starts the hub against a prepared ledger and, when stopped, reports what its processes
used (``resource.getrusage`` measured inside each of them). ``RUNNERS`` maps ``--runner`` names to
factories; a runner with N worker processes is a ``ProcessRunner`` whose ``workers`` is N and whose
``target`` is that runner's worker entry point (a ``WorkerTarget``). Stopping is bounded: a process
that has not reported in time is killed, so none outlives the bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import resource
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from orderbridge import event_loop
from orderbridge.connectors.errors import ConfigError
from orderbridge.gc_tuning import tune_for_long_run

log = logging.getLogger("orderbridge.bench")


@dataclass(frozen=True)
class HubSpec:
    """What a hub process needs: the prepared ledger, the runner options, its web port."""

    database_url: str
    runner: dict[str, Any]
    port: int
    index: int = 0


GRACE_SECONDS = 20.0  # a hub process's own shutdown: the job runs in progress finish, up to this long
# The distributed runner's workers: how long runs in progress may take to finish once told to stop
# before they are cancelled (Procrastinate's shutdown_graceful_timeout).
RUN_GRACE_SECONDS = 10.0
# How long ProcessRunner.stop waits for the processes' reports; one still silent then is killed.
# Well above a hub process's own bounded shutdown (grace, cancelled runs, pools and threads closing).
STOP_SECONDS = 60.0
EXIT_SECONDS = 10.0  # after its report a process only has to exit; then SIGTERM, then SIGKILL
# A hub process whose bench is gone (its end of the pipe closed) stops, and exits this much later
# at the latest, even if its event loop is stuck.
ORPHAN_SECONDS = 60.0

# A hub process's entry point: serve until ``stop`` is set, then shut down gracefully.
WorkerTarget = Callable[[HubSpec, asyncio.Event], Awaitable[None]]


@dataclass
class HubUsage:
    """What the hub's processes used, summed over them (peak memory: the largest process)."""

    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    tracemalloc_peak_mb: float | None = None
    processes: int = 0  # the processes that reported
    killed: int = 0  # processes that did not report in time and were killed: not in the figures above
    profile: str | None = None

    def add(self, part: dict[str, Any]) -> None:
        self.cpu_seconds += float(part["cpu_seconds"])
        self.peak_rss_mb = max(self.peak_rss_mb, float(part["peak_rss_mb"]))
        if part.get("tracemalloc_peak_mb") is not None:
            self.tracemalloc_peak_mb = max(self.tracemalloc_peak_mb or 0.0, float(part["tracemalloc_peak_mb"]))
        self.profile = part.get("profile") or self.profile
        self.processes += 1


class Runner(Protocol):
    name: str

    def start(self, spec: HubSpec) -> None: ...

    def stop(self) -> HubUsage: ...


async def serve_embedded(spec: HubSpec, stop: asyncio.Event) -> None:
    """The embedded runner: the web app (webhooks) with every job on its schedule, in one process."""
    import uvicorn

    from orderbridge.config import RunnerConfig
    from orderbridge.engine.hub import Hub
    from orderbridge.ledger.db import open_ledger
    from orderbridge.web.app import create_app

    hub = Hub(db=open_ledger(spec.database_url, migrate=False), runner=RunnerConfig.model_validate(spec.runner))
    app = create_app(hub, with_runner=True)  # starts the EmbeddedRunner with the app
    tune_for_long_run()  # as `orderbridge serve` does
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=spec.port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True  # graceful: the job runs in progress finish ...
    waiting.cancel()
    try:
        await asyncio.wait_for(serving, GRACE_SECONDS)
    except TimeoutError:
        pass  # ... unless they take too long (an interrupted bench): the ledger resumes them on a rerun
    hub.db.dispose()


async def serve_distributed(spec: HubSpec, stop: asyncio.Event) -> None:
    """A process of a distributed cluster (PostgreSQL, Procrastinate): each runs a queue worker; the
    first also serves the web app (health, webhooks) and runs the scheduler, as `orderbridge worker`,
    `orderbridge scheduler` and `orderbridge serve --no-runner` do in a deployment."""
    import uvicorn

    from orderbridge.config import RunnerConfig
    from orderbridge.engine.hub import Hub
    from orderbridge.ledger.db import open_ledger
    from orderbridge.runners.distributed import attach, make_app
    from orderbridge.runners.distributed.scheduler import Scheduler
    from orderbridge.runners.distributed.worker import ABANDON_SECONDS, run_worker
    from orderbridge.web.app import create_app

    runner = RunnerConfig.model_validate(spec.runner)
    hub = attach(Hub(db=open_ledger(spec.database_url, migrate=False), runner=runner))
    tasks = [asyncio.create_task(run_worker(hub, concurrency=runner.concurrency, name=f"bench-{spec.index}",
                                            stop=stop, grace=RUN_GRACE_SECONDS))]
    server: uvicorn.Server | None = None
    sched: Scheduler | None = None
    if spec.index == 0:
        web_hub = attach(Hub(db=hub.db, runner=runner), ensure=False)  # the web app closes its own hub
        server = uvicorn.Server(uvicorn.Config(create_app(web_hub, with_runner=False), host="127.0.0.1",
                                               port=spec.port, log_level="warning"))
        tasks.append(asyncio.create_task(server.serve()))
        queue = make_app(hub.db, pool_size=2)
        sched = Scheduler(web_hub, queue, tick=0.5)

        async def scheduling(sched: Scheduler) -> None:
            async with queue.open_async():
                await sched.run_forever()

        tasks.append(asyncio.create_task(scheduling(sched)))
    tune_for_long_run()  # as `orderbridge worker` and `serve` do
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stop.set()  # told to, or a part ended early: either way all stop (the worker watches this event)
    if sched is not None:
        sched.stop()
    if server is not None:
        server.should_exit = True
    # run_worker bounds its own stop (grace, then cancelled runs); this bounds everything else.
    _, pending = await asyncio.wait(tasks, timeout=RUN_GRACE_SECONDS + 3 * ABANDON_SECONDS)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=ABANDON_SECONDS)
    hub.db.dispose()
    errors = [t.exception() for t in tasks if t.done() and not t.cancelled()]
    for error in errors:
        if error is not None:
            raise error


def _await_stop(pipe: Connection, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Inside a hub process: set ``stop`` when the bench says so, or when the bench is gone."""
    try:
        pipe.recv()
        orphan = False
    except (EOFError, OSError):  # the bench died: nobody will collect a report, nor end this process
        orphan = True
    with contextlib.suppress(RuntimeError):  # the loop has already ended
        loop.call_soon_threadsafe(stop.set)
    if orphan:
        time.sleep(ORPHAN_SECONDS)  # a daemon thread: a process that stops in time never gets here
        os._exit(1)


def _process_main(target: WorkerTarget, spec: HubSpec, pipe: Connection, tracemalloc_on: bool,
                  profile_to: str | None) -> None:
    """Inside a hub process: run the target until told to stop, then report getrusage."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the bench's to handle
    if tracemalloc_on:
        import tracemalloc

        tracemalloc.start()
    profiler: Any = None
    if profile_to:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005, async_mode="disabled")
        profiler.start()

    async def main() -> None:
        stop = asyncio.Event()
        threading.Thread(target=_await_stop, args=(pipe, asyncio.get_running_loop(), stop), daemon=True).start()
        await target(spec, stop)

    error = ""
    try:
        event_loop.run(main())
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    report: dict[str, Any] = {"error": error}
    if profiler is not None and profile_to:
        profiler.stop()
        Path(profile_to).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        report["profile"] = profile_to
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report.update(cpu_seconds=usage.ru_utime + usage.ru_stime, peak_rss_mb=own_peak_rss_mb())
    if tracemalloc_on:
        import tracemalloc

        report["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    with contextlib.suppress(OSError):  # the bench may have given up on this process already
        pipe.send(report)


@dataclass
class ProcessRunner:
    """``workers`` hub processes, each running ``target``; spawned fresh so nothing of the bench is counted."""

    name: str
    target: WorkerTarget
    workers: int = 1
    tracemalloc: bool = False
    profile_to: str | None = None
    _procs: list[tuple[Any, Connection]] = field(default_factory=list)

    def start(self, spec: HubSpec) -> None:
        ctx = mp.get_context("spawn")
        for index in range(self.workers):
            ours, theirs = ctx.Pipe()
            profile = self.profile_to if index == 0 else None
            mine = HubSpec(spec.database_url, spec.runner, spec.port + index, index)
            proc = ctx.Process(target=_process_main, name=f"orderbridge-hub-{index}", daemon=True,
                               args=(self.target, mine, theirs, self.tracemalloc, profile))
            proc.start()
            theirs.close()  # now held by the process alone: its end reads as EOF here
            self._procs.append((proc, ours))

    def alive(self) -> bool:
        return all(p.is_alive() for p, _ in self._procs)

    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._procs]

    def stop(self, within: float = STOP_SECONDS) -> HubUsage:
        """Stop every hub process and sum what they used. A process that has not reported within
        ``within`` seconds is killed and left out of the figures (counted in ``killed``, with a
        warning); either way no process is left running."""
        usage = HubUsage()
        errors = []
        for _, pipe in self._procs:  # all at once: they shut down in parallel
            with contextlib.suppress(OSError):
                pipe.send("stop")
        deadline = time.monotonic() + within
        try:
            for index, (proc, pipe) in enumerate(self._procs):
                part = _report(pipe, deadline)
                if part is not None:
                    if part.get("error"):
                        errors.append(part["error"])
                    usage.add(part)
                    _end(proc, EXIT_SECONDS)
                elif proc.is_alive():
                    _end(proc, 0.0)
                    usage.killed += 1
                    log.warning("hub process %d of the %s runner (pid %s) did not stop within %.0f s and was "
                                "killed; the hub's CPU and memory figures leave it out",
                                index, self.name, proc.pid, within)
                else:
                    errors.append(f"hub process {index} exited with code {proc.exitcode} without a report")
        finally:
            for proc, pipe in self._procs:
                _end(proc, 0.0)  # a no-op unless the loop above was interrupted
                pipe.close()
            self._procs.clear()
        if errors:
            raise ConfigError(f"the hub stopped with an error: {errors[0]}", fix="see the hub's log lines above")
        return usage


def own_peak_rss_mb() -> float:
    """This process's own peak resident size, in MB. Not ``ru_maxrss`` where ``/proc`` says better:
    on Linux a process started by fork and exec inherits the high-water mark of the one that started
    it, so a hub would report the bench's own peak (every seeded order and call log) whenever it is
    the larger. ``VmHWM`` is this process's alone."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass  # no /proc (macOS): ru_maxrss is all there is
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report(pipe: Connection, deadline: float) -> dict[str, Any] | None:
    """A hub process's report, or None if it sends none before ``deadline`` (or died without one)."""
    try:
        if pipe.poll(max(0.0, deadline - time.monotonic())):
            part: dict[str, Any] = pipe.recv()
            return part
    except (EOFError, OSError):
        pass
    return None


def _end(proc: Any, wait: float) -> None:
    """Let a process exit within ``wait`` seconds, else SIGTERM it, then SIGKILL it: it is gone after."""
    proc.join(wait)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)
    if proc.is_alive():  # SIGTERM is handled (uvicorn) or cannot be acted on (a stuck event loop)
        proc.kill()
        proc.join()


def embedded(tracemalloc: bool = False, profile_to: str | None = None) -> Runner:
    return ProcessRunner("embedded", serve_embedded, 1, tracemalloc=tracemalloc, profile_to=profile_to)


def workers(count: int = 2, tracemalloc: bool = False, profile_to: str | None = None) -> Runner:
    """``--runner workers --workers N``: N worker processes on PostgreSQL (the first also web and scheduler)."""
    return ProcessRunner(f"workers-{count}", serve_distributed, count, tracemalloc=tracemalloc,
                         profile_to=profile_to)


# --runner NAME -> factory(tracemalloc, profile_to); "workers" also takes the --workers count.
RUNNERS: dict[str, Callable[..., Runner]] = {"embedded": embedded, "workers": workers}


def check_runner(name: str, database_url: str | None, count: int | None = None) -> None:
    """Refuse a runner that cannot run with these options, before anything is started."""
    if name not in RUNNERS:
        raise ConfigError(f"unknown runner {name!r}", fix=f"use one of {sorted(RUNNERS)}")
    if count is not None and name != "workers":
        raise ConfigError(f"--workers goes with --runner workers, not with --runner {name}",
                          fix="add --runner workers (and --database-url postgresql://...), or drop --workers")
    if name == "workers" and not (database_url or "").startswith(("postgres://", "postgresql")):
        raise ConfigError(
            "--runner workers runs the hub as Procrastinate worker processes, which needs PostgreSQL: "
            "processes share a SQLite ledger only one at a time",
            fix="add --database-url postgresql://USER@HOST:5432/DB (a fresh database is made there for the "
                "run and dropped after it)")


def make_runner(name: str, database_url: str | None, count: int | None = None, *, tracemalloc: bool = False,
                profile_to: str | None = None) -> Runner:
    """The runner ``--runner NAME [--workers N]`` asks for, or a ConfigError saying what to change."""
    check_runner(name, database_url, count)
    if name == "workers":
        return workers(count or 2, tracemalloc=tracemalloc, profile_to=profile_to)
    return RUNNERS[name](tracemalloc=tracemalloc, profile_to=profile_to)
