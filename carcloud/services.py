"""What a running process needs, gathered in one place and handed to the API and workers.

Each slice's service is built once per process over the stores of one backend;
routes and roles call services, never stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient

from carcloud.alerts.service import AlertService
from carcloud.calendars.credentials import CredentialBox, credential_key
from carcloud.calendars.service import CalendarService
from carcloud.calls.motion import MotionWatch
from carcloud.calls.rooms import RoomLimits, RoomService
from carcloud.calls.service import CallService
from carcloud.campaigns.service import CampaignService
from carcloud.catalog import SignalCatalog
from carcloud.commands.events import CommandWatch
from carcloud.commands.service import CommandService
from carcloud.drivers.service import DriverService
from carcloud.events.service import EventService
from carcloud.geofences.service import GeofenceService
from carcloud.productivity.role import build_router
from carcloud.productivity.routeservice import RoutingSettings
from carcloud.productivity.service import ProductivityService
from carcloud.registry.secrets import SecretHasher
from carcloud.registry.service import ConnectionControl, RegistryService
from carcloud.storage import Stores
from carcloud.telematics.models import DetectionSettings
from carcloud.telematics.places import ServicePlaces
from carcloud.telematics.service import TelematicsService, known_capacities
from carcloud.twins.service import TwinService
from carcloud.webhooks.service import WebhookService


@dataclass
class Services:
    """Shared handles of one process: the slices' services over one set of stores."""

    stores: Stores
    catalog: SignalCatalog
    registry: RegistryService
    commands: CommandService
    twins: TwinService
    campaigns: CampaignService
    events: EventService
    telematics: TelematicsService
    drivers: DriverService
    calendars: CalendarService
    webhooks: WebhookService
    geofences: GeofenceService
    alerts: AlertService
    productivity: ProductivityService
    rooms: RoomService
    calls: CallService
    motion: MotionWatch
    nats: NatsClient | None = None
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    info: dict[str, str] = field(default_factory=dict)


def build_services(
    stores: Stores,
    catalog: SignalCatalog,
    nats: NatsClient | None = None,
    connections: ConnectionControl | None = None,
    watch: CommandWatch | None = None,
    mqtt_url: str = "mqtt://127.0.0.1:1883",
    *,
    vehicle_pepper: str,
    room_limits: RoomLimits | None = None,
    detection: DetectionSettings | None = None,
) -> Services:
    """Every slice's service, wired to each other only through their services.

    `vehicle_pepper` (from the platform secrets) keys the vehicle secret hashes; every
    process of one platform must have the same.
    """
    twins = TwinService(stores.twins, nats, stores.events)
    drivers = DriverService(stores.drivers)
    credentials = CredentialBox(credential_key(vehicle_pepper))
    registry = RegistryService(
        stores.registry, connections, twins, hasher=SecretHasher(vehicle_pepper)
    )
    commands = CommandService(stores.commands, nats, watch)
    calendars = CalendarService(stores.calendars, drivers, credentials)
    productivity = ProductivityService(
        stores.productivity,
        drivers,
        calendars,
        registry,
        stores.telemetry,
        commands,
        build_router(RoutingSettings.from_env()),
        nats,
    )
    rooms = RoomService(stores.calls, room_limits)
    motion = MotionWatch(stores.telemetry, twins)
    calls = CallService(stores.calls, commands, calendars, rooms, registry, motion)
    geofences = GeofenceService(stores.geofences, history=stores.telematics)
    places = ServicePlaces(geofences, drivers)  # trips' ends by name, tariffs at a geofence
    return Services(
        stores=stores,
        catalog=catalog,
        registry=registry,
        commands=commands,
        twins=twins,
        campaigns=CampaignService(twins, stores.events),
        events=EventService(stores.events),
        telematics=TelematicsService(
            stores.telematics, detection, usable_kwh=known_capacities(), places=places
        ),
        drivers=drivers,
        calendars=calendars,
        webhooks=WebhookService(stores.webhooks),
        geofences=geofences,
        alerts=AlertService(stores.alerts, history=stores.telematics, fleet=registry),
        productivity=productivity,
        rooms=rooms,
        calls=calls,
        motion=motion,
        nats=nats,
        mqtt_url=mqtt_url,
    )
