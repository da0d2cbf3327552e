"""Secrets: generated here, shown once, stored only as hashes.

Vehicle secrets get a slow salted hash (scrypt), because a stolen database must not
yield working car credentials. API keys are 256-bit random values, for which a fast
hash is enough: nobody can guess one, so there is nothing to slow down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from carcloud.errors import AuthError

# scrypt cost: about 30 ms per check on one core of the reference machine.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
API_KEY_PREFIX = "cck"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def new_vehicle_secret() -> str:
    """A fresh vehicle MQTT password."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    """A salted scrypt hash in the form scrypt$N$r$p$salt$digest."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """True if `secret` matches the stored scrypt hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            secret.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
            maxmem=256 * 1024**2,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, _unb64(digest))


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly made API key: `token` is shown once, `key_hash` is stored."""

    key_id: str
    token: str
    key_hash: str


def new_api_key() -> NewApiKey:
    """Make an API key token cck_<id>_<secret>."""
    key_id = secrets.token_hex(6)
    token = f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key_id, token, hash_api_key(token))


def hash_api_key(token: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(token.encode()).hexdigest()


def api_key_id(token: str) -> str:
    """The public id inside an API key token; AuthError if it is not one of ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1]:
        raise AuthError("malformed API key: expected cck_<id>_<secret>")
    return parts[1]
