"""Finds connectors and sandboxes through Python entry points, and builds connector instances.

The engine never imports a connector by name: a third-party package adds its own under the
``orderbridge.connectors`` group (a Connector subclass) and ``orderbridge.sandboxes`` (a
``create_app(options) -> ASGI app`` factory).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from orderbridge.connectors.base import ConnectionContext, Connector
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.http import ApiClient, RateBudget, RateSpec
from orderbridge.logs import register_secret

log = logging.getLogger("orderbridge.registry")

CONNECTOR_GROUP = "orderbridge.connectors"
SANDBOX_GROUP = "orderbridge.sandboxes"

_extra_connectors: dict[str, type[Connector]] = {}
_extra_sandboxes: dict[str, Callable[..., Any]] = {}
_cache: dict[str, dict[str, Any]] = {}


def _load(group: str) -> dict[str, Any]:
    if group not in _cache:
        found: dict[str, Any] = {}
        for ep in entry_points(group=group):
            try:
                found[ep.name] = ep.load()
            except Exception as exc:  # a broken plugin must not take the hub down
                log.warning("cannot load %s plugin %r (%s): %s", group, ep.name, ep.value, exc)
        _cache[group] = found
    return _cache[group]


def register_connector(cls: type[Connector]) -> None:
    """Register a connector class at run time (tests, embedding applications)."""
    _extra_connectors[cls.type_name] = cls


def register_sandbox(name: str, factory: Callable[..., Any]) -> None:
    _extra_sandboxes[name] = factory


def connector_types() -> dict[str, type[Connector]]:
    return {**_load(CONNECTOR_GROUP), **_extra_connectors}


def sandbox_factories() -> dict[str, Callable[..., Any]]:
    return {**_load(SANDBOX_GROUP), **_extra_sandboxes}


def connector_class(type_name: str) -> type[Connector]:
    types = connector_types()
    try:
        return types[type_name]
    except KeyError:
        known = ", ".join(sorted(types)) or "none installed"
        raise ConfigError(
            f"unknown connector type {type_name!r}",
            fix=f"use one of: {known}",
        ) from None


def parse_model(model: Any, data: Mapping[str, Any], what: str) -> Any:
    """Validate settings or credentials; the error names each wrong key and says why."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid {what}: {problems}", fix=f"correct the {what} listed") from None


def build_connector(
    type_name: str,
    *,
    name: str,
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    base_url: str = "",
    test_mode: bool = False,
    merchant: str = "",
    connection_id: int = 0,
    budget: RateBudget | None = None,
    timeout: float = 30.0,
    rate: RateSpec | None = None,
    ledger: Any = None,
) -> Connector:
    cls = connector_class(type_name)
    parsed_settings = parse_model(cls.settings_model, settings, f"settings of connection {name!r}")
    parsed_creds = parse_model(cls.credentials_model, credentials, f"credentials of connection {name!r}")
    for value in dict(credentials).values():
        if isinstance(value, str):
            register_secret(value)
    url = base_url or cls.default_base_url(parsed_settings, test_mode)
    if not url:
        raise ConfigError(
            f"connection {name!r} has no base URL",
            fix="set base_url (the sandbox's address in test mode)",
        )
    http = ApiClient(
        url,
        account_key=cls.account_key(parsed_creds, url),
        rate=rate or cls.rate_spec(parsed_creds),
        budget=budget,
        timeout=timeout,
    )
    ctx = ConnectionContext(
        connection_id=connection_id,
        name=name,
        merchant=merchant,
        settings=parsed_settings,
        credentials=parsed_creds,
        base_url=url,
        test_mode=test_mode,
        http=http,
        ledger=ledger,
    )
    return cls(ctx)
