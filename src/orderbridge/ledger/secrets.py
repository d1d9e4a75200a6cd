"""Credentials at rest: Fernet-encrypted with a key from the environment or a private key file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from orderbridge.connectors.errors import ConfigError
from orderbridge.ledger.db import data_dir

KEY_ENV = "ORDERBRIDGE_SECRET_KEY"


def _key_file() -> Path:
    return Path(os.environ.get("ORDERBRIDGE_SECRET_KEY_FILE") or data_dir() / "secret.key")


def load_key() -> bytes:
    """The key from ORDERBRIDGE_SECRET_KEY, else the key file (created, mode 0600, on first use)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = _key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"the secret key file {path} is readable by other users (mode {oct(mode)})",
            fix=f"run: chmod 600 {path}",
        )
    return path.read_bytes().strip()


class SecretBox:
    def __init__(self, key: bytes | None = None) -> None:
        try:
            self._fernet = Fernet(key or load_key())
        except ValueError:
            raise ConfigError(
                "the secret key is not a valid Fernet key",
                fix=f"set {KEY_ENV} to the output of: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
            ) from None

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken:
            raise ConfigError(
                "stored credentials cannot be decrypted with the current secret key",
                fix=f"restore the original {KEY_ENV} / key file, or enter the credentials again",
            ) from None
