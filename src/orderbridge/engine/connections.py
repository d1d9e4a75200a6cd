"""Connections managed one at a time (the dashboard): create, edit, enable, route, test.

The configuration file does the same in bulk through ``provision.apply_config``; both validate
settings and credentials with the connector's own pydantic models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from orderbridge.config import ConnectionConfig, RouteOptions
from orderbridge.connectors.base import CheckResult, Role
from orderbridge.connectors.errors import ConfigError, ConnectorError
from orderbridge.connectors.registry import connector_class, parse_model
from orderbridge.domain.models import utcnow
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import _merchant_id, upsert_route
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import new_id


@dataclass
class ConnectionForm:
    """What a user submits for one connection. Empty credential fields keep the stored value."""

    name: str
    merchant: str
    type: str
    base_url: str = ""
    test_mode: bool = False
    enabled: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, float] = field(default_factory=dict)
    rate_limit: dict[str, float] | None = None  # {"calls": N, "period": S}: overrides the connector's budget


def _validate_shape(form: ConnectionForm) -> None:
    try:
        ConnectionConfig.model_validate({"name": form.name, "merchant": form.merchant, "type": form.type,
                                         "schedule": form.schedule, "rate_limit": form.rate_limit})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'connection'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise ConfigError(f"invalid connection: {problems}", fix="correct the fields listed") from None
    if not form.merchant.strip():
        raise ConfigError("the connection needs a merchant", fix="enter the merchant's name")


def save_connection(hub: Hub, form: ConnectionForm, *, create: bool) -> list[str]:
    """Create or update one connection; returns warnings (valid but contradictory settings)."""
    _validate_shape(form)
    cls = connector_class(form.type)
    box = hub.box()
    now = utcnow()
    with hub.db.begin() as conn:
        c = t.connections
        existing = conn.execute(sa.select(c).where(c.c.name == form.name)).mappings().first()
        if create and existing is not None:
            raise ConfigError(f"a connection named {form.name!r} already exists", fix="pick another name")
        if not create and existing is None:
            raise ConfigError(f"no connection named {form.name!r}", fix="see the connections list")
        if existing is not None and existing["type"] != form.type:
            raise ConfigError(f"connection {form.name!r} is a {existing['type']} connection",
                              fix="create a new connection for another type")
        stored = box.open(existing["credentials_enc"]) if existing else {}
        creds = {**stored, **{k: v for k, v in form.credentials.items() if v not in ("", None)}}
        settings = parse_model(cls.settings_model, form.settings, "settings")
        parse_model(cls.credentials_model, creds, "credentials")
        warnings = list(cls.settings_problems(settings))
        values = {
            "merchant_id": _merchant_id(conn, form.merchant.strip()), "type": form.type, "role": str(cls.role),
            "settings": form.settings, "base_url": form.base_url.strip(), "test_mode": form.test_mode,
            "enabled": form.enabled, "schedule": form.schedule, "updated_at": now,
            "credentials_enc": box.seal(creds), "rate_limit": form.rate_limit,
        }
        if existing is None:
            new_id(conn.execute(c.insert().values(name=form.name, created_at=now, **values)))
        else:
            conn.execute(c.update().where(c.c.id == existing["id"]).values(**values))
    return warnings


def set_flags(hub: Hub, name: str, *, enabled: bool | None = None, test_mode: bool | None = None) -> None:
    """Enable / disable a connection or switch its test mode (the live connector is rebuilt)."""
    values: dict[str, Any] = {"updated_at": utcnow()}
    if enabled is not None:
        values["enabled"] = enabled
    if test_mode is not None:
        values["test_mode"] = test_mode
    with hub.db.begin() as conn:
        row = hub.connection(conn, name)
        conn.execute(t.connections.update().where(t.connections.c.id == row.id).values(**values))


def set_route(hub: Hub, source: str, backend: str) -> None:
    """Send a source's orders to a backend of the same merchant (keeping the route's options)."""
    with hub.db.begin() as conn:
        src = hub.connection(conn, source)
        dst = hub.connection(conn, backend)
        if src.role != Role.SOURCE or dst.role != Role.BACKEND:
            raise ConfigError(f"{source!r} must be a source and {backend!r} a backend",
                              fix="pick connections of the right kind")
        if src.merchant_id != dst.merchant_id:
            raise ConfigError(f"{source!r} and {backend!r} belong to different merchants",
                              fix="route a source to a backend of its own merchant")
        route = hub.route_for_source(conn, src.id)
        options = RouteOptions.model_validate(route.options if route else {})
        upsert_route(conn, src.id, dst.id, options, route.backend_options if route else {})


async def test_connection(hub: Hub, name: str) -> CheckResult:
    """Check credentials and access, in words; never raises for a connector's own failure."""
    try:
        with hub.db.connect() as conn:
            row = hub.connection(conn, name)
        return await hub.connector(row).check()
    except ConnectorError as exc:
        return CheckResult(False, str(exc))
