"""A sandbox started by a program (the demo, the bench, the chaos runs) ends with that program,
however the program ends: killed outright, it has no chance to stop its sandboxes itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

STARTER = """
import sys, time
from orderbridge.demo.sandboxes import SandboxProcess
box = SandboxProcess("houzz", {"accounts": [], "rate_limit": False}).start()
print(box.proc.pid, box.url, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A process that has exited but not been reaped yet (its parent is gone: init reaps it) is no longer running.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_sandbox_stops_when_the_program_that_started_it_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    sandbox_pid = 0
    try:
        assert starter.stdout is not None
        sandbox_pid_text, url = starter.stdout.readline().split()
        sandbox_pid = int(sandbox_pid_text)
        time.sleep(1.5)  # more than a parent check apart: alive while its program is
        assert httpx.get(url + "/__sandbox__/health", timeout=5).status_code == 200
        starter.send_signal(signal.SIGKILL)
        starter.wait(10)
        deadline = time.monotonic() + 15
        while _alive(sandbox_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(sandbox_pid), "the sandbox outlived the program that started it"
        try:
            httpx.get(url + "/__sandbox__/health", timeout=1)
        except httpx.HTTPError:
            pass
        else:
            raise AssertionError("the sandbox still answers")
    finally:
        if starter.poll() is None:
            starter.kill()
        if sandbox_pid and _alive(sandbox_pid):
            os.kill(sandbox_pid, signal.SIGKILL)
