"""Moved to `carcloud_agent.carside` (the agent's distribution); this name stays for old imports."""

from carcloud_agent.carside import CarSide, apply_desired

__all__ = ["CarSide", "apply_desired"]
