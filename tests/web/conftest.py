"""Browser tests: Playwright driving Debian's Chromium against the web app served over real HTTP."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.engine.users import create_user
from orderbridge.ledger.db import open_ledger
from orderbridge.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: never let its absence pass quietly
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/screenshots when ORDERBRIDGE_SCREENSHOTS=1 (to refresh the docs)."""
    if os.environ.get("ORDERBRIDGE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path


@dataclass
class Served:
    hub: Hub
    server: ServedApp

    @property
    def url(self) -> str:
        return self.server.url + "/dashboard"


@pytest.fixture
def serve(db_url: str) -> Iterator[Callable[..., Served]]:
    """Serve the web app on the test's ledger: ``serve(config, users={name: merchant}, runner=False)``."""
    started: list[Served] = []

    def make(cfg: AppConfig | None = None, users: dict[str, str | None] | None = None,
             runner: bool = False) -> Served:
        hub = Hub(db=open_ledger(db_url), runner=(cfg or AppConfig()).runner, http_timeout=5)
        if cfg is not None:
            apply_config(hub, cfg)
        for name, merchant in (users or {"admin": None}).items():
            create_user(hub.db, name, PASSWORD, merchant)
        served = Served(hub, ServedApp(create_app(hub, with_runner=runner)).start())
        started.append(served)
        return served

    yield make
    for s in started:
        s.server.stop()
        s.hub.db.dispose()


def login(page: Any, base: str, user: str = "admin", password: str = PASSWORD, *, here: bool = False) -> None:
    """Log in from the login page (``here``: the one the browser was just sent to, keeping ?next=)."""
    if not here:
        page.goto(base + "/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def wait_for_text(page: Any, url: str, text: str | re.Pattern[str], timeout: float = 30.0) -> None:
    """Reload the page until it shows the text (the runner works in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        body = page.inner_text("main")
        if (text.search(body) if isinstance(text, re.Pattern) else text in body):
            print(f"waited {time.monotonic() - deadline + timeout:.1f} s for {text!r}")
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear on {url} within {timeout} s; the page shows:\n{body[:3000]}")
        time.sleep(0.4)


def http_login(base: str, user: str = "admin", password: str = PASSWORD) -> httpx.Client:
    """A logged-in HTTP client (for timing and for forged requests)."""
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": user, "password": password, "csrf_token": token})
    assert r.status_code == 200 and "Log out" in r.text, r.text[:500]
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)
