"""The fleet simulator's vehicle model: street networks, simulated vehicles, demo brands.

from carcloud.sim import build_fleet

fleet = build_fleet(100, seed=1)
for vehicle in fleet:
    vehicle.step(1.0)
    values = vehicle.signals()  # {"Vehicle.Speed": 42.3, ...}, VSS 5.1 paths
"""

from carcloud.sim.citygen import generate_network, network_for
from carcloud.sim.commands import COMMANDS, CommandResult
from carcloud.sim.fleet import BRANDS, Brand, ModelLine, build_fleet, make_vin
from carcloud.sim.model import DEFAULT_START_EPOCH_S, SimVehicle
from carcloud.sim.roads import CITIES, City, Edge, Place, RoadNetwork, Route
from carcloud.sim.spec import VehicleSpec

__all__ = [
    "BRANDS",
    "CITIES",
    "COMMANDS",
    "DEFAULT_START_EPOCH_S",
    "Brand",
    "City",
    "CommandResult",
    "Edge",
    "ModelLine",
    "Place",
    "RoadNetwork",
    "Route",
    "SimVehicle",
    "VehicleSpec",
    "build_fleet",
    "generate_network",
    "make_vin",
    "network_for",
]
