"""Repeated failed logins lock the user name, and (at four times the count) the client address, for a
while: the lock is said in words with the time to wait, the password is not even checked meanwhile,
and it ends by itself."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from orderbridge.web.dashboard.throttle import LoginThrottle
from tests.web.conftest import PASSWORD, csrf_of
from tests.web.world import two_merchants


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lock_per_name_and_per_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window=60, clock=clock)
    for _ in range(3):
        assert throttle.locked("Ann", "10.0.0.1") is None
        throttle.failed("Ann", "10.0.0.1")
        clock.now += 1
    lock = throttle.locked("ann", "10.0.0.2")  # names are compared without case, from any address
    assert lock is not None and lock.what == "user" and lock.seconds == pytest.approx(57)
    assert lock.message == "Too many failed logins for this user name. Try again in 57 seconds."
    assert throttle.locked("bob", "10.0.0.1") is None  # the address has 3 of its 12
    clock.now += 57
    assert throttle.locked("ann", "10.0.0.1") is None  # the first failure left the window

    for n in range(12):  # many names from one address
        throttle.failed(f"user{n}", "10.0.0.9")
    lock = throttle.locked("someone-else", "10.0.0.9")
    assert lock is not None and lock.what == "address" and "from your network address" in lock.message
    throttle.succeeded("user11")  # a good password for one name does not reset the address
    assert throttle.locked("user11", "10.0.0.9") is not None

    throttle.failed("cy", "10.0.0.3")
    throttle.failed("cy", "10.0.0.3")
    throttle.succeeded("CY")  # a right password clears the name's failures
    throttle.failed("cy", "10.0.0.3")
    assert throttle.locked("cy", "10.0.0.3") is None


def _login(client: httpx.Client, user: str, password: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": user, "password": password, "csrf_token": token})


def test_locked_logins_over_http(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("ORDERBRIDGE_LOGIN_LOCK_SECONDS", "3")
    app = serve(two_merchants(), users={"admin": None, "ann": "acme"})
    client = httpx.Client(base_url=app.url, timeout=30, follow_redirects=True)
    for _ in range(3):
        r = _login(client, "ann", "wrong-password")
        assert r.status_code == 401 and "Wrong user name or password." in r.text
    started = time.monotonic()
    r = _login(client, "ann", PASSWORD)  # the right password, but the name is locked
    assert r.status_code == 429 and "Too many failed logins for this user name. Try again in" in r.text
    assert "orderbridge users passwd NAME" in r.text and 1 <= int(r.headers["retry-after"]) <= 3
    assert "Log out" not in r.text
    r = _login(client, "admin", PASSWORD)  # another name from the same address still gets in
    assert r.status_code == 200 and "Log out" in r.text
    client.post("/logout", data={"csrf_token": csrf_of(r.text)})
    time.sleep(max(0.0, 3.2 - (time.monotonic() - started)))
    r = _login(client, "ann", PASSWORD)  # the lock ended by itself
    assert r.status_code == 200 and "Log out" in r.text


def test_an_address_trying_many_names_is_locked(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_LOGIN_MAX_FAILURES", "2")  # so 8 per address
    app = serve(two_merchants(), users={"admin": None})
    client = httpx.Client(base_url=app.url, timeout=30, follow_redirects=True)
    for n in range(8):  # one address trying many names, each only once
        assert _login(client, f"guess{n}", "x" * 8).status_code == 401
    r = _login(client, "admin", PASSWORD)
    assert r.status_code == 429 and "Too many failed logins from your network address." in r.text
