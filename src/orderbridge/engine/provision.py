"""Applying the configuration file to the ledger: merchants, connections, routes, mappings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orderbridge.config import AppConfig, RouteOptions
from orderbridge.connectors.base import Role
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.registry import connector_class, parse_model
from orderbridge.domain.models import utcnow
from orderbridge.domain.refs import RefRule
from orderbridge.engine.hub import Hub
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import new_id


def _merchant_id(conn: Any, name: str) -> int:
    m = t.merchants
    row = conn.execute(sa.select(m.c.id).where(m.c.name == name)).scalar()
    if row is None:
        row = new_id(conn.execute(m.insert().values(name=name, created_at=utcnow())))
    return int(row)


def apply_config(hub: Hub, cfg: AppConfig) -> list[str]:
    """Upsert everything the file declares; return warnings (contradictory settings)."""
    warnings: list[str] = []
    box = hub.box()
    now = utcnow()
    with hub.db.begin() as conn:
        merchants = {m.name: _merchant_id(conn, m.name) for m in cfg.merchants}
        ids: dict[str, int] = {}
        for c in cfg.connections:
            cls = connector_class(c.type)
            settings = parse_model(cls.settings_model, c.settings, f"settings of connection {c.name!r}")
            parse_model(cls.credentials_model, c.credentials, f"credentials of connection {c.name!r}")
            warnings += [f"{c.name}: {p}" for p in cls.settings_problems(settings)]
            values = {
                "merchant_id": merchants[c.merchant], "type": c.type, "role": str(cls.role),
                "settings": c.settings, "base_url": c.base_url, "test_mode": c.test_mode,
                "enabled": c.enabled, "schedule": c.schedule, "updated_at": now,
                "rate_limit": c.rate_limit.model_dump() if c.rate_limit else None,
            }
            existing = conn.execute(sa.select(t.connections.c.id, t.connections.c.credentials_enc)
                                    .where(t.connections.c.name == c.name)).first()
            if existing:
                same_creds = box.open(existing.credentials_enc) == c.credentials
                if not same_creds:
                    values["credentials_enc"] = box.seal(c.credentials)
                conn.execute(t.connections.update().where(t.connections.c.id == existing.id).values(**values))
                ids[c.name] = int(existing.id)
            else:
                ids[c.name] = new_id(conn.execute(t.connections.insert().values(
                    name=c.name, credentials_enc=box.seal(c.credentials), created_at=now, **values
                )))
        roles = {c.name: str(connector_class(c.type).role) for c in cfg.connections}
        for i, r in enumerate(cfg.routes):
            if roles[r.source] != Role.SOURCE or roles[r.backend] != Role.BACKEND:
                raise ConfigError(f"routes[{i}]: {r.source!r} must be a source and {r.backend!r} a backend",
                                  fix="swap them, or pick connections of the right kind")
            try:
                RefRule(r.options.cust_ref_max_length, r.options.cust_ref_allowed, r.options.cust_ref_prefix)
            except ValueError as exc:
                raise ConfigError(f"routes[{i}].options: {exc}", fix="adjust the cust_ref options") from None
            backend_cls = connector_class(next(c.type for c in cfg.connections if c.name == r.backend))
            route_model = getattr(backend_cls, "route_options_model", None)
            if route_model is not None:
                parse_model(route_model, r.backend_options, f"routes[{i}].backend_options")
            upsert_route(conn, ids[r.source], ids[r.backend], r.options, r.backend_options)
        for a in cfg.sku_aliases:
            upsert_alias(conn, merchants[a.merchant], a.alias, a.sku)
        for s in cfg.ship_methods:
            upsert_ship_method(conn, merchants[s.merchant], s.source, s.carrier, s.service)
    return warnings


def upsert_route(conn: Any, source_id: int, backend_id: int, options: RouteOptions,
                 backend_options: dict[str, Any]) -> None:
    r = t.routes
    values = {"backend_id": backend_id, "options": options.model_dump(), "backend_options": backend_options}
    if conn.execute(r.update().where(r.c.source_id == source_id).values(**values)).rowcount == 0:
        conn.execute(r.insert().values(source_id=source_id, enabled=True, created_at=utcnow(), **values))


def upsert_alias(conn: Any, merchant_id: int, alias: str, sku: str) -> None:
    a = t.sku_aliases
    if conn.execute(a.update().where(a.c.merchant_id == merchant_id, a.c.alias == alias).values(sku=sku)).rowcount == 0:
        conn.execute(a.insert().values(merchant_id=merchant_id, alias=alias, sku=sku, created_at=utcnow()))


def upsert_ship_method(conn: Any, merchant_id: int, source: str, carrier: str, service: str) -> None:
    s = t.ship_method_maps
    if conn.execute(s.update().where(s.c.merchant_id == merchant_id, s.c.source_method == source)
                    .values(carrier=carrier, service=service)).rowcount == 0:
        conn.execute(s.insert().values(merchant_id=merchant_id, source_method=source, carrier=carrier,
                                       service=service, created_at=utcnow()))
