"""NATS JWTs (v2): base64url JSON claims signed with an ed25519 nkey.

    token = b64url(header) "." b64url(claims) "." b64url(ed25519(header "." claims))

with header {"typ": "JWT", "alg": "ed25519-nkey"}; the signer's public nkey is the
`iss` claim, so a token can be checked against its issuer alone.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import time
from typing import Any

import nacl.exceptions
import nacl.signing
import nkeys

from carcloud.errors import AuthError

_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_account_seed() -> str:
    """A fresh account nkey seed (text starting with SA), used as the callout issuer."""
    seed: bytes = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT)
    return seed.decode()


@functools.lru_cache(maxsize=8)
def keypair(seed: str) -> Any:
    """The nkeys key pair of a seed (cached: the callout signs two JWTs per connect)."""
    return nkeys.from_seed(bytearray(seed.encode()))


def public_key(seed: str) -> str:
    """The public nkey (A...) of a seed."""
    return str(keypair(seed).public_key.decode())


def _verify_key(public: str) -> nacl.signing.VerifyKey:
    raw = base64.b32decode(public + "=" * (-len(public) % 8))
    body, checksum = raw[:-2], raw[-2:]
    if nkeys.crc16(bytearray(body)).to_bytes(2, "little") != checksum:
        raise AuthError("JWT issuer is not a valid nkey (bad checksum)")
    return nacl.signing.VerifyKey(bytes(body[1:]))


def encode(claims: dict[str, Any], signer_seed: str) -> str:
    """Sign `claims` with the seed; iss, iat and jti are filled in."""
    signer = keypair(signer_seed)
    body = dict(claims)
    body["iss"] = signer.public_key.decode()
    body["iat"] = int(time.time())
    body["jti"] = (
        base64.b32encode(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    head = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(body, separators=(",", ":")).encode())
    signature = signer.sign(f"{head}.{payload}".encode())
    return f"{head}.{payload}.{_b64encode(signature)}"


def decode(token: str) -> dict[str, Any]:
    """Verify a token's signature against its issuer and expiry; return its claims."""
    try:
        head, payload, signature = token.split(".")
        header = json.loads(_b64decode(head))
        claims: dict[str, Any] = json.loads(_b64decode(payload))
    except ValueError as exc:
        raise AuthError(f"malformed JWT: {exc}") from exc
    if header.get("alg") != _HEADER["alg"]:
        raise AuthError(f"unexpected JWT algorithm {header.get('alg')!r}")
    try:
        _verify_key(str(claims["iss"])).verify(f"{head}.{payload}".encode(), _b64decode(signature))
    except (KeyError, ValueError, nacl.exceptions.BadSignatureError) as exc:
        raise AuthError("JWT signature does not match its issuer") from exc
    expiry = claims.get("exp")
    if expiry and time.time() > float(expiry):
        raise AuthError("JWT expired")
    return claims
