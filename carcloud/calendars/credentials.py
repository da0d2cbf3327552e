"""Calendar credentials encrypted at rest (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key is `CARCLOUD_SECRET_KEY` (a Fernet key: 32 bytes, URL-safe base64) when it is
set; otherwise it is derived with HKDF from the platform's vehicle pepper, which every
process of one platform already has (`secrets.json`, or `--secrets-file` on another
host), under a label of its own, so the two secrets never serve two purposes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carcloud.errors import ConfigError

SECRET_KEY_VARIABLE = "CARCLOUD_SECRET_KEY"
_LABEL = b"carcloud calendar credentials v1"


def derive_key(pepper: str) -> bytes:
    """A Fernet key derived from the platform's vehicle pepper."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(pepper.encode())
    return base64.urlsafe_b64encode(raw)


def credential_key(pepper: str, environ: Mapping[str, str] = os.environ) -> bytes:
    """The key of this platform: CARCLOUD_SECRET_KEY, else derived from the pepper."""
    given = environ.get(SECRET_KEY_VARIABLE, "").strip()
    if not given:
        return derive_key(pepper)
    try:
        if len(base64.urlsafe_b64decode(given.encode())) != 32:
            raise ValueError
    except (ValueError, binascii.Error):
        raise ConfigError(
            f"{SECRET_KEY_VARIABLE} must be 32 bytes in URL-safe base64 (make one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from None
    return given.encode()


class CredentialBox:
    """Seals and opens an account's credentials (a small JSON object)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return "CredentialBox(key=<hidden>)"

    def seal(self, credentials: Mapping[str, str]) -> str:
        """The encrypted token of `credentials`."""
        return self._fernet.encrypt(json.dumps(dict(credentials)).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        """The credentials of a token; ConfigError if this key did not seal it."""
        try:
            opened: dict[str, str] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ConfigError(
                "cannot decrypt the calendar credentials: the secret key is not the one they "
                f"were stored with ({SECRET_KEY_VARIABLE} or the platform secrets changed)"
            ) from None
        return opened
