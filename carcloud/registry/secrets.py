"""Secrets: generated here, shown once, stored only as hashes.

A vehicle secret is 192 bits from the OS's random generator, not a password a person
chose: nobody can guess it or find it in a word list, so slowing down each guess
(scrypt, bcrypt) buys nothing, and on a reconnect storm it costs tens of ms of CPU
per car. Vehicle secrets are therefore stored as HMAC-SHA256 under a server-side key
(the "pepper", in the platform's secrets.json, never in the database): a check costs
microseconds, and a stolen database alone cannot even confirm a guess. Hashes made
by older versions (scrypt) are still verified and replaced by the new form on the
next successful connect (see `RegistryService.check_secret`). docs/security.md has
the threat model.

API keys are 256-bit random values too, hashed with plain SHA-256 for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from carcloud.errors import AuthError, ConfigError

# Legacy scrypt cost (hashes written before the keyed hash): about 30 ms per check.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
HMAC_SCHEME = "hmac-sha256"
API_KEY_PREFIX = "cck"
# A pepper shorter than this is a configuration mistake, not a key.
MIN_PEPPER_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def new_vehicle_secret() -> str:
    """A fresh vehicle MQTT password: 192 random bits."""
    return secrets.token_urlsafe(24)


def new_pepper() -> str:
    """A fresh server-side key for vehicle secret hashes (256 random bits)."""
    return secrets.token_urlsafe(32)


def hash_secret_scrypt(secret: str) -> str:
    """A salted scrypt hash scrypt$N$r$p$salt$digest: the format before the keyed hash.

    Kept to verify stored hashes of that format and to make them in tests.
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_scrypt(secret: str, stored: str) -> bool:
    """True if `secret` matches a stored scrypt hash (slow: run it off the event loop)."""
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


class SecretHasher:
    """Keyed hashes of vehicle secrets: hmac-sha256$KEYID$DIGEST.

    The digest is HMAC-SHA256(pepper, VIN "\\n" secret): the VIN binds a hash to its
    car, so a hash copied onto another row does not let that car in. KEYID names
    the pepper (a fingerprint, not the pepper), so a process with another pepper
    (a stale copy of secrets.json) is told so instead of refusing cars silently.
    """

    def __init__(self, pepper: str) -> None:
        key = pepper.encode()
        if len(key) < MIN_PEPPER_BYTES:
            raise ConfigError("the vehicle secret pepper is missing or too short")
        self._key = key
        self.key_id = hashlib.sha256(b"carcloud-pepper-id\n" + key).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"SecretHasher(key_id={self.key_id!r})"

    def _digest(self, vin: str, secret: str) -> str:
        mac = hmac.new(self._key, f"{vin}\n{secret}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def hash(self, vin: str, secret: str) -> str:
        """The stored form of a vehicle's secret."""
        return f"{HMAC_SCHEME}${self.key_id}${self._digest(vin, secret)}"

    def is_current(self, stored: str) -> bool:
        """True for a hash of our form and key: its check costs microseconds."""
        return stored.startswith(f"{HMAC_SCHEME}${self.key_id}$")

    def is_legacy(self, stored: str) -> bool:
        """True for a scrypt hash of an older version: slow to check, upgraded on success."""
        return stored.startswith("scrypt$")

    def foreign_key(self, stored: str) -> bool:
        """True for a keyed hash made with another pepper (a mismatched secrets.json)."""
        return stored.startswith(f"{HMAC_SCHEME}$") and not self.is_current(stored)

    def verify(self, vin: str, secret: str, stored: str) -> bool:
        """Check a keyed hash (fast; False for any other form)."""
        if not self.is_current(stored):
            return False
        expected = stored.rsplit("$", 1)[1]
        return hmac.compare_digest(self._digest(vin, secret).encode(), expected.encode())


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
