"""Sandboxes started in their own processes (`orderbridge sandbox NAME`), for the demo and benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.sandbox_kit import free_port


class SandboxProcess:
    def __init__(self, name: str, options: dict[str, Any] | None = None, port: int = 0) -> None:
        self.name = name
        self.port = port or free_port()
        self.options = options or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/__sandbox__", timeout=30)

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        return self.spawn().wait_ready(timeout)

    def spawn(self) -> SandboxProcess:
        """Start the process and return at once (``wait_ready`` waits for it to answer)."""
        args = [sys.executable, "-m", "orderbridge", "sandbox", self.name, "--port", str(self.port),
                "--parent", str(os.getpid())]  # it stops with this process, should this one end without stop()
        for key, value in self.options.items():
            args += ["-o", f"{key}={json.dumps(value)}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def wait_ready(self, timeout: float = 30.0) -> SandboxProcess:
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode()[-2000:]
                raise ConfigError(f"the {self.name} sandbox did not start: {err}",
                                  fix="see the message above; is the port free?")
            try:
                if httpx.get(self.url + "/__sandbox__/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ConfigError(f"the {self.name} sandbox did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_all(boxes: list[SandboxProcess], timeout: float = 30.0) -> list[SandboxProcess]:
    """Start every sandbox, then wait for each: their start-ups (a Python process importing its
    app, about 1.5 s each) overlap rather than add up. Should one fail, every one is stopped."""
    try:
        for box in boxes:
            box.spawn()
        for box in boxes:
            box.wait_ready(timeout)
    except BaseException:
        for box in boxes:
            box.stop()
        raise
    return boxes


@contextlib.contextmanager
def running(*boxes: SandboxProcess, timeout: float = 30.0) -> Iterator[list[SandboxProcess]]:
    """``start_all(boxes)``; every one stopped on leaving."""
    start_all(list(boxes), timeout)
    try:
        yield list(boxes)
    finally:
        for box in boxes:
            box.stop()
