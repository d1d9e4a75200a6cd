"""`orderbridge demo --serve`: the demo prints the dashboard's address and login, and the dashboard shows
the demo's ledger (logged in with the printed password)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from orderbridge.connectors.sandbox_kit import free_port
from tests.web.conftest import http_login


def test_demo_serves_its_dashboard_with_a_printed_login() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orderbridge", "demo", "--orders", "4", "--until-done", "--serve", "--json",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        found = re.search(r"dashboard: (http://\S+)  user: admin  password: (\S+)", first)
        assert found, first
        url, password = found.group(1).rstrip("/"), found.group(2)
        deadline = time.monotonic() + 120
        while True:  # the sandboxes start and the orders flow; the dashboard answers meanwhile
            try:
                client = http_login(url, "admin", password)
                confirmed = re.search(r"(\d+) order\(s\) match", client.get("/orders?status=confirmed").text)
                if confirmed and int(confirmed.group(1)) > 0:
                    break
                client.close()
            except (httpx.HTTPError, AssertionError):
                pass
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no confirmed order on the demo's dashboard"
            time.sleep(1)
        assert "demo-houzz" in client.get("/connections").text
        with httpx.Client(base_url=url) as anon:  # the printed password is the only way in
            assert "Log in" in anon.get("/orders", follow_redirects=True).text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
