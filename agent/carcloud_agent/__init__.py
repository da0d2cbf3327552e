"""carcloud-agent: the edge agent of a car, and the car↔cloud protocol carcloud shares with it."""

__version__ = "0.1.0"
