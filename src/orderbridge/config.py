"""The TOML configuration file: merchants, connections, routes, mappings, runner options.

Loaded from ``--config`` or ``ORDERBRIDGE_CONFIG``; validated with errors that name the file,
the key and the fix. String values of the form ``env:NAME`` are read from the environment, so
credentials need not be written into the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orderbridge.api.settings import ApiSettings
from orderbridge.connectors.errors import ConfigError

CONFIG_ENV = "ORDERBRIDGE_CONFIG"

JOB_NAMES = ("download", "workflow", "upload", "cancels", "inventory", "deliver", "shipments", "stock")

DEFAULT_SCHEDULE = {
    "download": 5.0,
    "workflow": 2.0,
    "upload": 5.0,
    "cancels": 30.0,
    "inventory": 60.0,
    "deliver": 2.0,
    "shipments": 10.0,
    "stock": 60.0,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Strict):
    url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite in the data dir")


class RunnerConfig(_Strict):
    retry_for_hours: float = Field(default=72.0, gt=0, description="keep retrying transient errors this long")
    backoff_max_seconds: float = Field(default=900.0, gt=0)
    overlap_seconds: float = Field(
        default=600.0, ge=0, description="cursor look-back window: polls re-read the last 10 s before the cursor, "
                                         "and the whole window once a quarter of it has passed")
    lease_seconds: float = Field(default=120.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=256, description="external calls in flight per job run")
    http_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="wait this long for an API's answer")


class MerchantConfig(_Strict):
    name: str = Field(min_length=1, max_length=100)


class RateLimitConfig(_Strict):
    calls: int = Field(gt=0, description="at most this many calls ...")
    period: float = Field(gt=0, description="... per this many seconds, for the external account")


class ConnectionConfig(_Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    merchant: str
    type: str
    enabled: bool = True
    test_mode: bool = False
    base_url: str = ""
    credentials: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    schedule: dict[str, float] = Field(default_factory=dict)
    rate_limit: RateLimitConfig | None = Field(
        default=None, description="override the connector's call budget (e.g. a raised API quota)")

    @model_validator(mode="after")
    def _known_jobs(self) -> ConnectionConfig:
        unknown = sorted(set(self.schedule) - set(JOB_NAMES))
        if unknown:
            raise ValueError(f"unknown job(s) {unknown} in schedule; jobs are {list(JOB_NAMES)}")
        bad = [k for k, v in self.schedule.items() if not 0.2 <= v <= 86400]
        if bad:
            raise ValueError(f"schedule for {bad} must be between 0.2 seconds and 86400 (daily)")
        return self


class RouteOptions(_Strict):
    cust_ref_max_length: int = Field(default=50, ge=8, le=100)
    cust_ref_allowed: str = Field(default="A-Za-z0-9-_", description="regex character class body")
    cust_ref_prefix: str = ""
    ship_method_unmapped: Literal["error", "passthrough"] = "passthrough"
    hold_new_orders: bool = False


class RouteConfig(_Strict):
    source: str
    backend: str
    options: RouteOptions = Field(default_factory=RouteOptions)
    backend_options: dict[str, Any] = Field(default_factory=dict)


class AliasConfig(_Strict):
    merchant: str
    alias: str = Field(min_length=1)
    sku: str = Field(min_length=1)


class ShipMethodConfig(_Strict):
    merchant: str
    source: str = Field(min_length=1)
    carrier: str = ""
    service: str = ""


class AppConfig(_Strict):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    merchants: list[MerchantConfig] = Field(default_factory=list)
    connections: list[ConnectionConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    sku_aliases: list[AliasConfig] = Field(default_factory=list)
    ship_methods: list[ShipMethodConfig] = Field(default_factory=list)
    api: ApiSettings = Field(default_factory=ApiSettings)  # limits of the /v1 API (docs/api.md)

    @model_validator(mode="after")
    def _references(self) -> AppConfig:
        merchants = {m.name for m in self.merchants}
        names: set[str] = set()
        for i, c in enumerate(self.connections):
            if c.merchant not in merchants:
                raise ValueError(f"connections[{i}] ({c.name}): merchant {c.merchant!r} is not declared "
                                 f"in [[merchants]]")
            if c.name in names:
                raise ValueError(f"connections[{i}]: the name {c.name!r} is used twice")
            names.add(c.name)
        for i, r in enumerate(self.routes):
            for side in ("source", "backend"):
                if getattr(r, side) not in names:
                    raise ValueError(f"routes[{i}].{side}: no connection named {getattr(r, side)!r}")
        for i, a in enumerate(self.sku_aliases):
            if a.merchant not in merchants:
                raise ValueError(f"sku_aliases[{i}]: merchant {a.merchant!r} is not declared")
        for i, s in enumerate(self.ship_methods):
            if s.merchant not in merchants:
                raise ValueError(f"ship_methods[{i}]: merchant {s.merchant!r} is not declared")
        return self


def _expand_env(value: Any, where: str, path: Path) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}", path) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", path) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(
                f"{path}: {where.lstrip('.')} refers to environment variable {name}, which is not set",
                fix=f"export {name}=... before starting orderbridge",
            )
        return os.environ[name]
    return value


def config_path(explicit: str | Path | None) -> Path | None:
    value = explicit or os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def load_config(path: str | Path | None) -> AppConfig:
    """Read and validate a config file; with no path, an empty configuration."""
    p = config_path(path)
    if p is None:
        return AppConfig()
    if not p.exists():
        raise ConfigError(f"configuration file {p} does not exist",
                          fix="check --config / ORDERBRIDGE_CONFIG, or create the file (see the README)")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}", fix="correct the syntax at that line") from None
    raw = _expand_env(raw, "", p)
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            key = ".".join(str(x) for x in e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (check its spelling; see the README's configuration reference)"
            problems.append(f"{key}: {msg}" if key else msg)
        raise ConfigError(f"{p}: " + "; ".join(problems), fix="correct the keys named above") from None
