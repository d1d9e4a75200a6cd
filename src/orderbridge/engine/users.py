"""Dashboard accounts: create, list, change password, delete, and check a login.

Passwords are hashed with Argon2id (argon2-cffi). A user either belongs to one merchant (and sees
only that merchant's connections, orders, inventory and mappings) or, with no merchant, is an
administrator of all of them.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Engine

from orderbridge.connectors.errors import ConfigError
from orderbridge.domain.models import utcnow
from orderbridge.ledger import schema as t

MIN_PASSWORD = 8
_hasher = PasswordHasher()
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this keeps a login for an unknown name as slow as one with a wrong
    password. Made at the first login, not at import: an Argon2 hash takes its 64 MiB and a
    tenth of a second, which every process importing this module (the CLI, workers) would pay."""
    return _hasher.hash("orderbridge-no-such-user")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    merchant_id: int | None
    merchant: str | None
    created_at: datetime
    last_login_at: datetime | None
    password_hash: str

    @property
    def is_admin(self) -> bool:
        return self.merchant_id is None

    @property
    def fingerprint(self) -> str:
        """Changes with the password: a session holding an older one is no longer valid."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


def _query() -> sa.Select[tuple[object, ...]]:
    u, m = t.users, t.merchants
    return sa.select(u, m.c.name.label("merchant")).outerjoin(m, m.c.id == u.c.merchant_id)


def _user(row: sa.RowMapping) -> User:
    return User(id=row["id"], username=row["username"], merchant_id=row["merchant_id"], merchant=row["merchant"],
                created_at=row["created_at"], last_login_at=row["last_login_at"],
                password_hash=row["password_hash"])


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password is too short ({len(password)} characters)",
                          fix=f"use at least {MIN_PASSWORD} characters")


def _merchant_id(conn: Connection, merchant: str | None) -> int | None:
    if not merchant:
        return None
    mid = conn.execute(sa.select(t.merchants.c.id).where(t.merchants.c.name == merchant)).scalar()
    if mid is None:
        known = ", ".join(conn.execute(sa.select(t.merchants.c.name).order_by(t.merchants.c.name)).scalars())
        raise ConfigError(f"no merchant named {merchant!r}",
                          fix=f"use one of: {known}" if known else "declare the merchant first (configuration "
                          "file or a connection in the dashboard)")
    return int(mid)


def count_users(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.users)).scalar_one())


def list_users(db: Engine) -> list[User]:
    with db.connect() as conn:
        return [_user(r) for r in conn.execute(_query().order_by(t.users.c.username)).mappings()]


def get_user(db: Engine, user_id: int) -> User | None:
    with db.connect() as conn:
        row = conn.execute(_query().where(t.users.c.id == user_id)).mappings().first()
    return _user(row) if row else None


def create_user(db: Engine, username: str, password: str, merchant: str | None = None) -> User:
    if not _NAME.match(username):
        raise ConfigError(f"{username!r} is not a valid user name",
                          fix="use 1-100 letters, digits or . _ @ -")
    _check_password(password)
    now = utcnow()
    with db.begin() as conn:
        if conn.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).first():
            raise ConfigError(f"a user named {username!r} already exists",
                              fix="pick another name, or change its password with `orderbridge users passwd`")
        conn.execute(t.users.insert().values(
            username=username, password_hash=_hasher.hash(password), merchant_id=_merchant_id(conn, merchant),
            created_at=now, updated_at=now))
        row = conn.execute(_query().where(t.users.c.username == username)).mappings().one()
    return _user(row)


def set_password(db: Engine, username: str, password: str) -> None:
    _check_password(password)
    with db.begin() as conn:
        done = conn.execute(t.users.update().where(t.users.c.username == username).values(
            password_hash=_hasher.hash(password), updated_at=utcnow())).rowcount
    if not done:
        raise ConfigError(f"no user named {username!r}", fix="see `orderbridge users list`")


def delete_user(db: Engine, username: str) -> None:
    with db.begin() as conn:
        done = conn.execute(t.users.delete().where(t.users.c.username == username)).rowcount
    if not done:
        raise ConfigError(f"no user named {username!r}", fix="see `orderbridge users list`")


def authenticate(db: Engine, username: str, password: str) -> User | None:
    """The user when the password is right; None otherwise (without saying which part was wrong)."""
    with db.connect() as conn:
        row = conn.execute(_query().where(t.users.c.username == username)).mappings().first()
    try:
        _hasher.verify(row["password_hash"] if row else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    user = _user(row)
    with db.begin() as conn:
        values: dict[str, object] = {"last_login_at": utcnow()}
        if _hasher.check_needs_rehash(user.password_hash):
            values["password_hash"] = _hasher.hash(password)
        conn.execute(t.users.update().where(t.users.c.id == user.id).values(**values))
    return get_user(db, user.id)
