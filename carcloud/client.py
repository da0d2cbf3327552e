"""A small typed client of the REST API, used by the CLI and the simulator."""

from __future__ import annotations

from typing import Any

import httpx

from carcloud.errors import (
    AuthError,
    CarcloudError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)

_ERRORS: dict[int, type[CarcloudError]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
}


class ApiClient:
    """Calls /api/v1 with a bearer key; errors come back as carcloud errors."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; returns the decoded JSON body (None for 204)."""
        try:
            response = self._http.request(method, f"/api/v1{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise CarcloudError(f"cannot reach carcloud at {self.base_url}: {exc}") from exc
        if response.status_code == 204:
            return None
        if response.is_error:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise _ERRORS.get(response.status_code, CarcloudError)(
                f"{response.status_code}: {message}"
            )
        return response.json()

    def get(self, url_path: str, /, **params: Any) -> Any:
        return self.request(
            "GET", url_path, params={k: v for k, v in params.items() if v is not None}
        )

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)
