"""The data dir: the database, JetStream's files, generated secrets and the operator key.

DATA_DIR/
  carcloud.db        SQLite (embedded default)
  nats/              JetStream store
  nats.conf          generated server config (service passwords bcrypt-hashed)
  secrets.json       0600: service passwords, the auth-callout issuer seed and the
                     vehicle secret pepper (the key of vehicle secret hashes)
  operator.key       0600: the operator API key, printed on first start
  runtime.json       where the running platform listens (for the CLI and workers)
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carcloud.auth.nkeyjwt import new_account_seed
from carcloud.errors import ConfigError
from carcloud.registry.secrets import new_pepper

# NATS users of the platform's services, and "dispatch": the cloud's own MQTT identity.
SERVICE_USERS = ("svc", "sys", "auth", "dispatch")


@dataclass(frozen=True)
class PlatformSecrets:
    """Credentials the platform's own processes use; never shown to vehicles or apps."""

    passwords: dict[str, str]
    issuer_seed: str
    # Key of the vehicle secret hashes: kept here, not in the database (docs/security.md).
    vehicle_pepper: str

    def __repr__(self) -> str:
        return (
            f"PlatformSecrets(users={sorted(self.passwords)}, issuer_seed=<hidden>, "
            "vehicle_pepper=<hidden>)"
        )


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (mode 0600), atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _read_secrets(path: Path) -> tuple[dict[str, str], str, str | None]:
    """(passwords, issuer seed, pepper) of a secrets file; ConfigError says what is wrong.

    The messages never quote the file's content: it is all secrets.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"secrets file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"secrets file {path} is not JSON{where}") from None
    passwords = data.get("passwords") if isinstance(data, dict) else None
    issuer_seed = data.get("issuer_seed") if isinstance(data, dict) else None
    pepper = data.get("vehicle_pepper") if isinstance(data, dict) else None
    if (
        not isinstance(passwords, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in passwords.items())
        or not isinstance(issuer_seed, str)
        or not isinstance(pepper, str | None)
    ):
        raise ConfigError(
            f"secrets file {path} is not a carcloud secrets file: it needs "
            '{"passwords": {USER: PASSWORD, ...}, "issuer_seed": SEED}'
        )
    return dict(passwords), issuer_seed, pepper


def load_platform_secrets(path: Path) -> PlatformSecrets:
    """The platform's service credentials from a copy of DATA_DIR/secrets.json.

    For a worker on another host (--secrets-file, CARCLOUD_SECRETS_FILE): the file is
    only read, never completed, since new passwords would not match the platform's.
    """
    passwords, issuer_seed, pepper = _read_secrets(path)
    missing = [user for user in SERVICE_USERS if user not in passwords]
    if missing:
        raise ConfigError(
            f"secrets file {path} has no password for {', '.join(missing)}; "
            "copy the platform's current DATA_DIR/secrets.json"
        )
    if pepper is None:  # a copy from before vehicle secrets were keyed
        raise ConfigError(
            f"secrets file {path} has no vehicle_pepper; "
            "copy the platform's current DATA_DIR/secrets.json"
        )
    return PlatformSecrets(passwords, issuer_seed, pepper)


class DataDir:
    """Files of one carcloud installation."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    def ensure(self) -> None:
        """Create the folder (private to this user) if it is missing."""
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            (self.path / "nats").mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot use data dir {self.path}: {exc.strerror}") from exc

    @property
    def secrets_file(self) -> Path:
        return self.path / "secrets.json"

    @property
    def operator_key_file(self) -> Path:
        return self.path / "operator.key"

    @property
    def runtime_file(self) -> Path:
        return self.path / "runtime.json"

    def platform_secrets(self, create: bool = True) -> PlatformSecrets:
        """The service credentials, generated on first use."""
        passwords: dict[str, str] = {}
        issuer_seed = pepper = None
        if self.secrets_file.exists():
            passwords, issuer_seed, pepper = _read_secrets(self.secrets_file)
            if set(SERVICE_USERS) <= set(passwords) and pepper is not None:
                return PlatformSecrets(passwords, issuer_seed, pepper)
        elif not create:
            raise ConfigError(f"{self.path} has no secrets.json; run `carcloud up` there first")
        # First start, or a data dir from a version with fewer service users or no pepper.
        for user in SERVICE_USERS:
            passwords.setdefault(user, secrets.token_urlsafe(24))
        made = PlatformSecrets(passwords, issuer_seed or new_account_seed(), pepper or new_pepper())
        write_private(
            self.secrets_file,
            json.dumps(
                {
                    "passwords": made.passwords,
                    "issuer_seed": made.issuer_seed,
                    "vehicle_pepper": made.vehicle_pepper,
                },
                indent=2,
            ),
        )
        return made

    def operator_key(self) -> str | None:
        """The operator API key kept in the data dir, if any."""
        if self.operator_key_file.exists():
            return self.operator_key_file.read_text(encoding="utf-8").strip() or None
        return None

    def save_operator_key(self, token: str) -> None:
        write_private(self.operator_key_file, token + "\n")

    def write_runtime(self, info: dict[str, Any]) -> None:
        self.runtime_file.write_text(json.dumps(info, indent=2), encoding="utf-8")

    def read_runtime(self) -> dict[str, Any]:
        """Where the platform of this data dir listens; ConfigError if it never ran."""
        if not self.runtime_file.exists():
            raise ConfigError(f"no carcloud has run in {self.path}; start one with `carcloud up`")
        data: dict[str, Any] = json.loads(self.runtime_file.read_text(encoding="utf-8"))
        return data

    def clear_runtime(self) -> None:
        self.runtime_file.unlink(missing_ok=True)
