"""API keys per level (cart, merchant, warehouse): created, listed and revoked here, from the CLI
(``orderbridge keys``) or the dashboard. The secret is shown once and only its SHA-256 is stored.

What a key sees:
- a **cart** key belongs to one ``cartrover_cart`` connection: only that cart's orders;
- a **merchant** key belongs to one merchant: every order of that merchant. Attached to one of the
  merchant's ``cartrover_wms`` connections it is that warehouse's key: it sees the orders delivered
  to that warehouse and may acknowledge them, post shipments and push stock;
- a **warehouse** key is granted one or more ``cartrover_wms`` connections; the merchants owning
  them are the warehouse's merchants (``wms/merchant/list``), and it acts for one of them at a time
  (``X-Merchant-Pk``), as that merchant's warehouse key would.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from orderbridge.connectors.errors import ConfigError
from orderbridge.domain.models import utcnow
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import new_id

LEVELS = ("cart", "merchant", "warehouse")
CART_TYPE, WMS_TYPE = "cartrover_cart", "cartrover_wms"


@dataclass
class KeyInfo:
    id: int
    api_user: str
    level: str
    merchant: str | None
    connections: list[str]
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


@dataclass
class NewKey:
    info: KeyInfo
    api_key: str  # the secret: shown once, never stored


@dataclass
class AuthKey:
    """An authenticated key, as the API uses it."""

    id: int
    api_user: str
    level: str
    merchant_id: int | None
    connection_id: int | None
    grants: dict[int, int] = field(default_factory=dict)  # merchant id -> cartrover_wms connection id


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _connection(conn: Connection, name: str, within_merchant: int | None = None) -> Any:
    c = t.connections
    query = sa.select(c.c.id, c.c.type, c.c.merchant_id).where(c.c.name == name)
    if within_merchant is not None:  # another merchant's connection answers as if it did not exist
        query = query.where(c.c.merchant_id == within_merchant)
    row = conn.execute(query).first()
    if row is None:
        raise ConfigError(f"no connection named {name!r}", fix="see `orderbridge connections list`")
    return row


def _merchant_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(t.merchants.c.id).where(t.merchants.c.name == name)).scalar()
    if found is None:
        raise ConfigError(f"no merchant named {name!r}", fix="declare it in [[merchants]] of the configuration")
    return int(found)


def _require_type(row: Any, name: str, type_name: str, level: str) -> None:
    if row.type != type_name:
        raise ConfigError(f"connection {name!r} is a {row.type} connection; a {level} key needs a {type_name} one",
                          fix=f"pick a connection of type {type_name} (or add one to the configuration)")


def create_key(db: Engine, level: str, *, merchant: str | None = None, connections: list[str] | None = None,
               label: str = "", within_merchant: int | None = None) -> NewKey:
    """Create a key; ConfigError says what is missing or wrong for the level.

    ``within_merchant``: the key is created on behalf of that merchant (a merchant's dashboard user):
    only its own connections can be named, and warehouse keys, which may serve several merchants,
    are refused.
    """
    names = list(dict.fromkeys(connections or []))
    if level not in LEVELS:
        raise ConfigError(f"unknown key level {level!r}", fix=f"use one of: {', '.join(LEVELS)}")
    if within_merchant is not None and level == "warehouse":
        raise ConfigError("warehouse keys can serve several merchants, so only an administrator creates them",
                          fix="create a merchant key attached to your CartRover API warehouse connection instead")
    with db.begin() as conn:
        merchant_id = _merchant_id(conn, merchant) if merchant else None
        if within_merchant is not None:
            if merchant_id not in (None, within_merchant):
                raise ConfigError(f"you cannot create keys for merchant {merchant!r}",
                                  fix="leave the merchant out: the key is for your own merchant")
            merchant_id = within_merchant
        rows = {n: _connection(conn, n, within_merchant) for n in names}
        connection_id: int | None = None
        grants: list[int] = []
        if level == "warehouse":
            if not names or merchant:
                raise ConfigError("a warehouse key is granted CartRover API warehouse connections, not a merchant",
                                  fix="give --connection NAME once per cartrover_wms connection it serves")
            for n, r in rows.items():
                _require_type(r, n, WMS_TYPE, level)
            grants = [int(r.id) for r in rows.values()]
        else:
            if len(names) > 1:
                raise ConfigError(f"a {level} key belongs to at most one connection",
                                  fix="give --connection once (or create a warehouse key)")
            row = rows[names[0]] if names else None
            if level == "cart":
                if row is None:
                    raise ConfigError("a cart key belongs to a cartrover_cart connection",
                                      fix="give --connection NAME of the API Access cart")
                _require_type(row, names[0], CART_TYPE, level)
            elif row is not None:
                _require_type(row, names[0], WMS_TYPE, level)
            elif merchant_id is None:
                raise ConfigError("a merchant key needs its merchant",
                                  fix="give --merchant NAME (and --connection NAME of its cartrover_wms connection "
                                      "for a warehouse's key)")
            if row is not None:
                if merchant_id is not None and merchant_id != row.merchant_id:
                    raise ConfigError(f"connection {names[0]!r} belongs to another merchant than {merchant!r}",
                                      fix="give the merchant the connection belongs to, or leave --merchant out")
                merchant_id, connection_id = int(row.merchant_id), int(row.id)
        secret = secrets.token_urlsafe(32)
        api_user = f"ob{level[0]}_{secrets.token_hex(8)}"
        key_id = new_id(conn.execute(t.api_keys.insert().values(
            api_user=api_user, secret_hash=hash_secret(secret), level=level, merchant_id=merchant_id,
            connection_id=connection_id, label=label[:200], created_at=utcnow())))
        for cid in grants:
            conn.execute(t.api_key_grants.insert().values(key_id=key_id, connection_id=cid))
        info = _infos(conn, t.api_keys.c.id == key_id)[0]
    return NewKey(info=info, api_key=secret)


def _infos(conn: Connection, where: Any = None) -> list[KeyInfo]:
    k, m, c, g = t.api_keys, t.merchants, t.connections, t.api_key_grants
    query = (sa.select(k, m.c.name.label("merchant"), c.c.name.label("connection"))
             .outerjoin(m, m.c.id == k.c.merchant_id).outerjoin(c, c.c.id == k.c.connection_id).order_by(k.c.id))
    if where is not None:
        query = query.where(where)
    granted: dict[int, list[str]] = {}
    for key_id, name in conn.execute(sa.select(g.c.key_id, c.c.name).join(c, c.c.id == g.c.connection_id)
                                     .order_by(g.c.id)):
        granted.setdefault(int(key_id), []).append(name)
    return [KeyInfo(id=r.id, api_user=r.api_user, level=r.level, merchant=r.merchant,
                    connections=[r.connection] if r.connection else granted.get(r.id, []), label=r.label,
                    created_at=r.created_at, last_used_at=r.last_used_at, revoked_at=r.revoked_at)
            for r in conn.execute(query)]


def _of_merchant(merchant_id: int | None) -> Any:
    """Keys a merchant manages: its cart and merchant keys (warehouse keys may serve several merchants)."""
    k = t.api_keys
    return sa.true() if merchant_id is None else sa.and_(k.c.merchant_id == merchant_id, k.c.level != "warehouse")


def list_keys(db: Engine, *, include_revoked: bool = False, merchant_id: int | None = None) -> list[KeyInfo]:
    """Every key (``merchant_id`` None), or only those of one merchant."""
    live = sa.true() if include_revoked else t.api_keys.c.revoked_at.is_(None)
    with db.connect() as conn:
        return _infos(conn, sa.and_(live, _of_merchant(merchant_id)))


def key_connections(db: Engine, *, merchant_id: int | None = None) -> list[tuple[str, str, str]]:
    """(connection, type, merchant) of the connections a key can belong to: API Access carts and
    CartRover API warehouses, of every merchant or of one."""
    c, m = t.connections, t.merchants
    query = (sa.select(c.c.name, c.c.type, m.c.name).join(m, m.c.id == c.c.merchant_id)
             .where(c.c.type.in_([CART_TYPE, WMS_TYPE])).order_by(m.c.name, c.c.type, c.c.name))
    if merchant_id is not None:
        query = query.where(c.c.merchant_id == merchant_id)
    with db.connect() as conn:
        return [(str(n), str(ty), str(mn)) for n, ty, mn in conn.execute(query)]


def revoke_key(db: Engine, ident: str, *, merchant_id: int | None = None) -> KeyInfo:
    """Revoke by api_user or id; it is refused from the next request on. With ``merchant_id`` only
    that merchant's keys can be named (any other answers as if it did not exist)."""
    k = t.api_keys
    match = k.c.api_user == ident if not ident.isdigit() else sa.or_(k.c.api_user == ident, k.c.id == int(ident))
    with db.begin() as conn:
        found = conn.execute(sa.select(k.c.id).where(match, _of_merchant(merchant_id))).scalar()
        if found is None:
            raise ConfigError(f"no API key {ident!r}", fix="see `orderbridge keys list`")
        conn.execute(k.update().where(k.c.id == found, k.c.revoked_at.is_(None)).values(revoked_at=utcnow()))
        return _infos(conn, k.c.id == found)[0]


def authenticate(db: Engine, api_user: str, api_key: str) -> tuple[AuthKey | None, str]:
    """The key, or None with the reason it is refused."""
    k, g, c = t.api_keys, t.api_key_grants, t.connections
    with db.connect() as conn:
        row = conn.execute(sa.select(k).where(k.c.api_user == api_user)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(api_key)):
            return None, "the api_user / api_key pair is not valid"
        if row.revoked_at is not None:
            return None, "this API key was revoked"
        grants = {int(m): int(cid) for cid, m in conn.execute(
            sa.select(g.c.connection_id, c.c.merchant_id).join(c, c.c.id == g.c.connection_id)
            .where(g.c.key_id == row.id).order_by(g.c.id))}
    if row.last_used_at is None or utcnow() - row.last_used_at > timedelta(minutes=1):
        with db.begin() as conn:
            conn.execute(k.update().where(k.c.id == row.id).values(last_used_at=utcnow()))
    return AuthKey(id=row.id, api_user=row.api_user, level=row.level, merchant_id=row.merchant_id,
                   connection_id=row.connection_id, grants=grants), ""
