"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from carcloud.ingest.models import DeadLetter, LatestValue
from carcloud.registry.models import SLUG_RE, TAG_RE, Brand, Vehicle
from carcloud.timeutil import format_us
from carcloud.vin import Vin

Tag = Annotated[str, Field(pattern=TAG_RE.pattern, examples=["fleet:berlin"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrandIn(Strict):
    slug: str = Field(pattern=SLUG_RE.pattern, examples=["volta"])
    name: str = Field(min_length=1, max_length=100, examples=["Volta Motors"])


class BrandOut(BaseModel):
    slug: str
    name: str
    created_at: str | None

    @classmethod
    def of(cls, brand: Brand) -> BrandOut:
        return cls(slug=brand.slug, name=brand.name, created_at=format_us(brand.created_at))


class VehicleIn(Strict):
    vin: str = Field(examples=["WVWZZZ1JZXW000001"])
    brand: str = Field(pattern=SLUG_RE.pattern)
    model: str = Field(min_length=1, max_length=100)
    model_year: int | None = Field(default=None, ge=1980, le=2100)
    tags: list[Tag] = Field(default_factory=list, max_length=50)

    @field_validator("vin")
    @classmethod
    def _vin(cls, raw: str) -> str:
        return str(Vin(raw))


class VehiclePatch(Strict):
    tags: list[Tag] | None = Field(default=None, max_length=50)
    model: str | None = Field(default=None, min_length=1, max_length=100)
    model_year: int | None = Field(default=None, ge=1980, le=2100)


class VehicleOut(BaseModel):
    vin: str
    brand: str
    model: str
    model_year: int | None
    tags: list[str]
    online: bool
    last_seen_at: str | None
    connected_at: str | None
    revoked: bool
    created_at: str | None

    @classmethod
    def of(cls, vehicle: Vehicle) -> VehicleOut:
        return cls(
            vin=vehicle.vin,
            brand=vehicle.brand,
            model=vehicle.model,
            model_year=vehicle.model_year,
            tags=list(vehicle.tags),
            online=vehicle.online,
            last_seen_at=format_us(vehicle.last_seen_at),
            connected_at=format_us(vehicle.connected_at),
            revoked=vehicle.revoked_at is not None,
            created_at=format_us(vehicle.created_at),
        )


class VehicleCredentialsOut(BaseModel):
    """Shown once: the secret is not stored and cannot be read again."""

    vehicle: VehicleOut
    mqtt_username: str
    mqtt_password: str
    mqtt_client_id: str

    @classmethod
    def of(cls, vehicle: Vehicle, secret: str) -> VehicleCredentialsOut:
        # Username and client id are both the VIN: the callout refuses anything else.
        return cls(
            vehicle=VehicleOut.of(vehicle),
            mqtt_username=vehicle.vin,
            mqtt_password=secret,
            mqtt_client_id=vehicle.vin,
        )


class VehicleBatchRow(Strict):
    """One row of a batch: checked row by row by the service, so one bad row fails alone."""

    vin: str = Field(examples=["WVWZZZ1JZXW000001"])
    brand: str
    model: str
    model_year: int | None = None
    tags: list[str] = Field(default_factory=list)


class VehicleBatchIn(Strict):
    vehicles: list[VehicleBatchRow] = Field(min_length=1, max_length=1000)


class VehicleBatchResult(BaseModel):
    """One row's outcome; the password (username and client id: the VIN) is shown once."""

    row: int = Field(description="0-based position in the request")
    vin: str
    registered: bool
    mqtt_password: str | None = None
    error: str | None = Field(
        default=None,
        description="invalid_vin, invalid, unknown_brand, duplicate or already_registered",
    )
    message: str | None = None


class VehicleBatchOut(BaseModel):
    registered: int
    failed: int
    results: list[VehicleBatchResult]


class VehicleList(BaseModel):
    vehicles: list[VehicleOut]
    limit: int
    offset: int


class SignalValueOut(BaseModel):
    value: Any = Field(description="In the unit the catalog gives for the signal")
    ts: str | None = Field(description="The vehicle's time of this value")

    @classmethod
    def of(cls, latest: LatestValue) -> SignalValueOut:
        return cls(value=latest.value, ts=format_us(latest.ts))


class VehicleState(BaseModel):
    vin: str
    online: bool
    last_seen_at: str | None
    received_at: str | None = Field(description="When the newest telemetry arrived")
    signals: dict[str, SignalValueOut]


class HistoryPointOut(BaseModel):
    ts: str | None
    value: Any
    count: int = 1


class SignalHistory(BaseModel):
    vin: str
    path: str
    unit: str | None
    interval: str | None
    points: list[HistoryPointOut]


class DeadLetterOut(BaseModel):
    id: int | None
    received_at: str | None
    subject: str
    vin: str | None
    reason: str
    payload: str
    payload_encoding: str

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        try:
            payload, encoding = letter.payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            import base64

            payload, encoding = base64.b64encode(letter.payload).decode(), "base64"
        return cls(
            id=letter.id,
            received_at=format_us(letter.received_at),
            subject=letter.subject,
            vin=letter.vin,
            reason=letter.reason,
            payload=payload,
            payload_encoding=encoding,
        )


class ApiKeyIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    brand: str | None = Field(default=None, pattern=SLUG_RE.pattern)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    brand: str | None
    created_at: str | None
    key: str | None = Field(default=None, description="Shown once, at creation")


class ErrorBody(BaseModel):
    error: str
    message: str


class CatalogSignal(BaseModel):
    path: str
    datatype: str
    unit: str | None
    min: float | None
    max: float | None
    allowed: list[str] | None
    description: str
