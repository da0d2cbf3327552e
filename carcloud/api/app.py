"""The ASGI application: routers, error translation and the OpenAPI document."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from carcloud import __version__
from carcloud.alerts import api as alerts
from carcloud.api.routes import fleet, system, telemetry
from carcloud.calendars import api as calendars
from carcloud.calls import api as calls
from carcloud.campaigns import api as campaigns
from carcloud.commands import api as commands
from carcloud.drivers import api as drivers
from carcloud.errors import (
    AuthError,
    CarcloudError,
    ConflictError,
    ForbiddenError,
    MessagingError,
    NotFoundError,
    PreconditionFailed,
    StorageError,
    ValidationError,
)
from carcloud.events import api as events
from carcloud.geofences import api as geofences
from carcloud.productivity import api as productivity
from carcloud.registry import api as registry
from carcloud.services import Services
from carcloud.telematics import api as telematics
from carcloud.twins import api as twins
from carcloud.webhooks import api as webhooks

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"

_STATUS: list[tuple[type[CarcloudError], int, str]] = [
    (ForbiddenError, 403, "forbidden"),
    (AuthError, 401, "unauthorized"),
    (NotFoundError, 404, "not_found"),
    (PreconditionFailed, 412, "precondition_failed"),
    (ConflictError, 409, "conflict"),
    (ValidationError, 422, "invalid"),
    (MessagingError, 503, "messaging_unavailable"),
    (StorageError, 503, "storage_unavailable"),
]


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def _carcloud_error(request: Request, exc: Exception) -> JSONResponse:
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            if status >= 500:
                log.error("%s %s failed: %s", request.method, request.url.path, exc)
            return _error(status, code, str(exc))
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal", "internal error")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg"))
    return _error(422, "invalid", "; ".join(str(p) for p in problems))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return _error(exc.status_code, code, str(exc.detail))


def create_app(services: Services) -> FastAPI:
    """The REST API bound to a process's shared services."""
    app = FastAPI(
        title="carcloud",
        version=__version__,
        description="One REST API for every brand's vehicles: registry, live state, history.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.add_exception_handler(CarcloudError, _carcloud_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for module in (
        registry,
        telemetry,
        fleet,
        commands,
        twins,
        campaigns,
        events,
        telematics,
        drivers,
        calendars,
        webhooks,
        geofences,
        alerts,
        productivity,
        calls,
        system,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def fleet_page() -> FileResponse:
        """The live fleet page (it asks for an API key, or takes one from #key=)."""
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/headunit/{vin}", include_in_schema=False)
    async def headunit_page(vin: str) -> FileResponse:
        """What a car's screen shows, live (it takes the API key from #key=)."""
        return FileResponse(STATIC_DIR / "headunit.html")

    @app.get("/rooms/{room_id}", include_in_schema=False)
    async def room_page(room_id: str) -> FileResponse:
        """The page a person joins an audio room from (the join token comes in #token=)."""
        return FileResponse(STATIC_DIR / "room.html")

    @app.get("/healthz", tags=["system"])
    async def healthz() -> dict[str, object]:
        """Liveness: the process answers and its storage and NATS are reachable."""
        nats_ok = services.nats is not None and services.nats.is_connected
        return {"status": "ok" if nats_ok else "degraded", "nats": nats_ok}

    return app
