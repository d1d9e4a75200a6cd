"""Start and stop a local cluster: N `orderbridge worker` processes, the scheduler, optionally the web.

For benchmarks and tests (`orderbridge bench --workers N`), and to try the distributed runner on
one machine. Production runs the same commands under a service manager (see docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.sandbox_kit import free_port


@dataclass
class ClusterProcess:
    role: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Cluster:
    config: Path
    command: list[str]
    env: dict[str, str]
    log_dir: Path
    workers: list[ClusterProcess] = field(default_factory=list)
    scheduler: ClusterProcess | None = None
    web: ClusterProcess | None = None
    web_url: str = ""

    def _start(self, role: str, args: Sequence[str]) -> ClusterProcess:
        n = sum(1 for p in self.log_dir.glob(f"{role}*.log"))
        log = self.log_dir / f"{role}{n}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*self.command, *args, "--config", str(self.config)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        return ClusterProcess(role, proc, log)

    def add_worker(self, concurrency: int = 8) -> ClusterProcess:
        p = self._start("worker", ["worker", "--concurrency", str(concurrency)])
        self.workers.append(p)
        return p

    def start_scheduler(self, tick: float = 0.5, stalled_after: float = 10.0) -> ClusterProcess:
        self.scheduler = self._start("scheduler", ["scheduler", "--tick", str(tick),
                                                   "--stalled-after", str(stalled_after)])
        return self.scheduler

    def start_web(self, port: int = 0, timeout: float = 60.0) -> ClusterProcess:
        port = port or free_port()
        self.web = self._start("web", ["serve", "--no-runner", "--port", str(port)])
        self.web_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.web.alive():
                raise ConfigError(f"the web process exited: {self.web.tail()}", fix="see its output above")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.web_url + "/health", timeout=2).status_code == 200:
                    return self.web
            time.sleep(0.2)
        raise ConfigError(f"the web process did not answer within {timeout:.0f} s: {self.web.tail()}")

    def all(self) -> list[ClusterProcess]:
        return [p for p in [*self.workers, self.scheduler, self.web] if p is not None]

    def check_alive(self) -> None:
        for p in self.all():
            if not p.alive() and p.proc.returncode != -signal.SIGKILL:
                raise ConfigError(f"the {p.role} process (pid {p.pid}) exited with {p.proc.returncode}: {p.tail()}",
                                  fix="see its output above")

    def kill(self, p: ClusterProcess) -> None:
        """Kill a process the hard way (SIGKILL), as a crash or power loss would."""
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM everything (runs in progress finish their step), then SIGKILL what is left."""
        for p in self.all():
            if p.alive():
                p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.all():
            try:
                p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait(5)


@contextlib.contextmanager
def start_cluster(
    config_path: str | Path,
    workers: int = 2,
    *,
    concurrency: int = 8,
    web: bool = False,
    scheduler: bool = True,
    database_url: str | None = None,
    command: Sequence[str] | None = None,
    log_dir: str | Path | None = None,
    stalled_after: float = 10.0,
    env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """Run ``workers`` worker processes and the scheduler (and the web with ``web=True``) for a config.

    ``command`` is how to invoke orderbridge (default: this Python's ``-m orderbridge``);
    ``database_url`` is given to the processes as ORDERBRIDGE_DATABASE_URL (used when the config
    names no database). Everything is stopped on exit.
    """
    full_env = {**os.environ, **(env or {})}
    if database_url:
        full_env["ORDERBRIDGE_DATABASE_URL"] = database_url
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="orderbridge-cluster-"))
        cluster = Cluster(config=Path(config_path), command=list(command or [sys.executable, "-m", "orderbridge"]),
                          env=full_env, log_dir=Path(log_dir))
        cluster.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            if web:
                cluster.start_web()  # first: it also migrates the ledger and applies the config
            for _ in range(workers):
                cluster.add_worker(concurrency)
            if scheduler:
                cluster.start_scheduler(stalled_after=stalled_after)
            yield cluster
        finally:
            cluster.stop()
