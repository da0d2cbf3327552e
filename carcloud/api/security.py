"""API keys: `Authorization: Bearer cck_<id>_<secret>`, operator-wide or scoped to a brand."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carcloud.errors import AuthError, ForbiddenError, NotFoundError
from carcloud.registry.secrets import api_key_id, hash_api_key
from carcloud.services import Services

_bearer = HTTPBearer(auto_error=False, description="An API key: cck_<id>_<secret>")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an operator key (brand None) sees everything, a brand key its brand."""

    key_id: str
    name: str
    brand: str | None

    @property
    def is_operator(self) -> bool:
        return self.brand is None

    def require_operator(self) -> None:
        """Refuse brand-scoped keys for operator-only actions."""
        if not self.is_operator:
            raise ForbiddenError(
                "this action needs an operator key; brand-scoped keys cannot do it"
            )

    def check_brand(self, brand: str) -> None:
        """NotFound (not Forbidden) for another brand, so that names do not leak."""
        if self.brand is not None and self.brand != brand:
            raise NotFoundError(f"brand {brand!r} not found")


def services_of(request: Request) -> Services:
    """The process's shared services."""
    found: Services = request.app.state.services
    return found


async def services(request: Request) -> Services:
    """The dependency (async: FastAPI runs a plain function in a thread pool)."""
    return services_of(request)


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the caller's bearer key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("missing API key: send Authorization: Bearer <key>")
    token = credentials.credentials
    digest = hash_api_key(token)
    now = time.monotonic()
    cached = _recent.get(digest)
    if cached is not None and cached[1] > now:
        return cached[0]
    key_id = api_key_id(token)
    record = await services_of(request).registry.find_api_key(key_id)
    if record is None or not hmac.compare_digest(record.key_hash, digest):
        raise AuthError("unknown or wrong API key")
    if record.revoked_at is not None:
        raise AuthError("this API key was revoked")
    found = Principal(record.id, record.name, record.brand)
    if len(_recent) > 10_000:
        _recent.clear()
    _recent[digest] = (found, now + PRINCIPAL_CACHE_S)
    return found


# A key checked moments ago need not be looked up again: busy apps send many requests.
PRINCIPAL_CACHE_S = 5.0
_recent: dict[str, tuple[Principal, float]] = {}


CurrentPrincipal = Annotated[Principal, Depends(principal)]
CurrentServices = Annotated[Services, Depends(services)]
