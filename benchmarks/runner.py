"""How the benchmark runs the hub: in processes of its own, so its CPU and memory are its own.

A runner starts the hub against a prepared ledger and, when stopped, reports what its processes
used (``resource.getrusage`` measured inside each of them). ``RUNNERS`` maps ``--runner`` names to
factories; a runner with N worker processes is a ``ProcessRunner`` whose ``workers`` is N and whose
``target`` is that runner's worker entry point (a ``WorkerTarget``).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from orderbridge.connectors.errors import ConfigError


@dataclass(frozen=True)
class HubSpec:
    """What a hub process needs: the prepared ledger, the runner options, its web port."""

    database_url: str
    runner: dict[str, Any]
    port: int
    index: int = 0


GRACE_SECONDS = 20.0

# A hub process's entry point: serve until ``stop`` is set, then shut down gracefully.
WorkerTarget = Callable[[HubSpec, asyncio.Event], Awaitable[None]]


@dataclass
class HubUsage:
    """What the hub's processes used, summed over them (peak memory: the largest process)."""

    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    tracemalloc_peak_mb: float | None = None
    processes: int = 0
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
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        threading.Thread(target=lambda: (pipe.recv(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
        await target(spec, stop)

    error = ""
    try:
        asyncio.run(main())
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
    report: dict[str, Any] = {"error": error}
    if profiler is not None and profile_to:
        profiler.stop()
        Path(profile_to).write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        report["profile"] = profile_to
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report.update(cpu_seconds=usage.ru_utime + usage.ru_stime, peak_rss_mb=usage.ru_maxrss / 1024)
    if tracemalloc_on:
        import tracemalloc

        report["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
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
            self._procs.append((proc, ours))

    def alive(self) -> bool:
        return all(p.is_alive() for p, _ in self._procs)

    def stop(self) -> HubUsage:
        usage = HubUsage()
        errors = []
        for proc, pipe in self._procs:
            if proc.is_alive():
                pipe.send("stop")
            if pipe.poll(120):
                part = pipe.recv()
                if part.get("error"):
                    errors.append(part["error"])
                usage.add(part)
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
        self._procs.clear()
        if errors:
            raise ConfigError(f"the hub stopped with an error: {errors[0]}", fix="see the hub's log lines above")
        return usage


def embedded(tracemalloc: bool = False, profile_to: str | None = None) -> Runner:
    return ProcessRunner("embedded", serve_embedded, 1, tracemalloc=tracemalloc, profile_to=profile_to)


# --runner NAME -> factory(tracemalloc, profile_to). A distributed runner adds its entry here.
RUNNERS: dict[str, Callable[..., Runner]] = {"embedded": embedded}
