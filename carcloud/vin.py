"""Vehicle identification numbers: shared with the car, defined in carcloud_agent.vin."""

from carcloud_agent.vin import Vin, describe_invalid_vin, is_valid_vin

__all__ = ["Vin", "describe_invalid_vin", "is_valid_vin"]
