"""Credentials: encrypted at rest, never in a log line, an alert, a job error or a command's output."""

from __future__ import annotations

import os
import random
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from orderbridge import logs
from orderbridge.chaos.world import HOLDED, HOUZZ, TRADEGECKO, WIX, World, toml_document
from orderbridge.cli import main as cli
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.registry import sandbox_factories
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger
from orderbridge.ledger.secrets import SecretBox, load_key


class InProcessSandbox:
    """A sandbox served from a thread of this process, with the admin surface SandboxProcess has."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.served = ServedApp(sandbox_factories()[name](options))

    @property
    def url(self) -> str:
        return self.served.url

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/__sandbox__", timeout=30)

    def spawn(self) -> InProcessSandbox:
        self.served.start()
        return self

    def wait_ready(self, timeout: float = 30.0) -> InProcessSandbox:
        return self  # answering once spawn() returns

    def start(self) -> None:
        self.spawn()

    def stop(self) -> None:
        if self.served.thread.is_alive():
            self.served.stop()


@dataclass
class Said:
    code: int
    text: str


@pytest.fixture
def world() -> Iterator[World]:
    w = World(
        houzz=InProcessSandbox("houzz", {"accounts": [], "rate_limit": {"calls": 100_000, "period": 60}}),  # type: ignore[arg-type]
        tradegecko=InProcessSandbox("tradegecko", {"rate_calls": 100_000, "rate_period": 60}),  # type: ignore[arg-type]
        wix=InProcessSandbox("wix", {"demo_site": False, "webhook_retry_delays": [], "rate_limit": {"enabled": False}}),  # type: ignore[arg-type]
        holded=InProcessSandbox("holded", {"accounts": [], "rate_limit_enabled": False}),  # type: ignore[arg-type]
    )
    w.start()
    yield w
    w.stop()


def test_no_configured_secret_appears_in_logs_alerts_errors_or_output(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "ledger.sqlite"
    world.seed_world("http://127.0.0.1:9/webhooks/nowhere")
    cfg = world.config(f"sqlite:///{db}", 5.0)
    secrets: dict[str, str] = {}
    for c in cfg["connections"]:  # every credential from the environment, as the README advises
        for key, value in c["credentials"].items():
            if key in ("token", "access_token", "api_key"):
                name = f"OB_{c['name']}_{key}".upper().replace("-", "_")
                secrets[name] = value
                monkeypatch.setenv(name, value)
                c["credentials"][key] = f"env:{name}"
    # The failing auth cases: a wrong Houzz token and a wrong Holded key.
    bad = {"OB_BAD_HOUZZ_TOKEN": "wrong-houzz-token-5d1e88", "OB_BAD_HOLDED_KEY": "wrong-holded-key-9a7c02"}
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    secrets.update(bad)
    houzz = next(c for c in cfg["connections"] if c["name"] == HOUZZ)
    holded = next(c for c in cfg["connections"] if c["name"] == HOLDED)
    cfg["connections"] += [
        {**houzz, "name": "bad-houzz", "credentials": {**houzz["credentials"], "token": "env:OB_BAD_HOUZZ_TOKEN"}},
        {**holded, "name": "bad-holded", "credentials": {"api_key": "env:OB_BAD_HOLDED_KEY"}},
    ]
    config = tmp_path / "orderbridge.toml"
    config.write_text(toml_document(cfg), encoding="utf-8")
    assert len(secrets) == 6 and all(v not in config.read_text() for v in secrets.values())

    said: list[Said] = []

    def ob(*args: str) -> Said:
        logs.forget_secrets()  # as in a fresh process: nothing registered before the command runs
        monkeypatch.setattr(sys, "argv", ["orderbridge", "--log-level", "debug", *args, "--config", str(config)])
        capsys.readouterr()
        try:
            cli.run()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        said.append(Said(code, out + err))
        return said[-1]

    # An API that echoes the credential in its refusal (some do): the message reaches the order's
    # error, its timeline and `orders show`, and must arrive there masked.
    holded_key = secrets["OB_CHAOS_HOLDED_API_KEY"]
    with world.holded.admin() as a:
        a.post("/refusals", json={"match": "POST /api/invoicing/v1/documents/salesorder", "count": 1,
                                  "http_status": 400, "info": f"this document was refused for key {holded_key}"})
    world.place(4, 2, random.Random(3))
    for _ in range(3):
        ob("sync", "--once", "--json")
        world.act_as_warehouse()
        world.act_as_holded_user()
    ob("sync", "--once")
    engine = open_ledger(f"sqlite:///{db}")
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(t.orders.c.status)).scalars().all()
        first = conn.execute(sa.select(t.orders.c.cust_ref)).scalars().first()
    assert sorted(statuses) == ["confirmed"] * 5 + ["error"], statuses  # the flow really ran end to end
    with engine.connect() as conn:
        refused = conn.execute(sa.select(t.orders.c.error_message).where(t.orders.c.status == "error")).scalar_one()
    assert "refused for key ***" in refused
    assert ob("connections", "test", "bad-houzz").code != 0
    assert ob("connections", "test", "bad-holded").code != 0
    assert ob("connections", "test", HOUZZ).code == 0
    assert ob("connections", "test", TRADEGECKO).code == 0
    assert ob("connections", "test", WIX).code == 0
    ob("connections", "list", "--json")
    alerts = ob("alerts", "list", "--json")
    assert "bad-houzz" in alerts.text and "bad-holded" in alerts.text  # the auth failures were reported
    ob("jobs", "status", "--json")
    ob("orders", "list", "--json")
    ob("orders", "show", str(first), "--json")
    ob("connections", "diagnose", HOUZZ)
    assert "DEBUG" in "".join(s.text for s in said)  # debug logging was on and captured

    leaks = [(name, s.text[max(0, s.text.find(v) - 80):s.text.find(v) + 40]) for s in said
             for name, v in secrets.items() if v in s.text]
    assert not leaks, leaks
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            text = "\n".join(str(tuple(r)) for r in conn.execute(sa.select(table)))
            found = [name for name, v in secrets.items() if v in text]
            assert not found, f"{table.name} holds {found} in plain text"
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.sqlite*"))
    assert not [name for name, v in secrets.items() if v.encode() in raw]  # not even in free pages or the WAL


def test_key_from_the_environment_and_a_refused_world_readable_key_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv("ORDERBRIDGE_SECRET_KEY", key.decode())
    sealed = SecretBox().seal({"token": "tok-123456"})
    assert "tok-123456" not in sealed and SecretBox(key).open(sealed) == {"token": "tok-123456"}
    assert not (Path(os.environ["ORDERBRIDGE_DATA_DIR"]) / "secret.key").exists()  # the env key wins

    monkeypatch.delenv("ORDERBRIDGE_SECRET_KEY")
    made = load_key()
    path = Path(os.environ["ORDERBRIDGE_DATA_DIR"]) / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and made == path.read_bytes().strip()
    assert load_key() == made  # the same key on every start
    path.chmod(0o644)
    with pytest.raises(ConfigError) as refused:
        load_key()
    assert "readable by other users" in refused.value.message and "chmod 600" in refused.value.fix
    path.chmod(0o600)
    with pytest.raises(ConfigError) as wrong:
        SecretBox(Fernet.generate_key()).open(sealed)
    assert "cannot be decrypted" in wrong.value.message and "tok-123456" not in str(wrong.value)


