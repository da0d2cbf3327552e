"""UTC time helpers: shared with the car, defined in carcloud_agent.timeutil."""

from carcloud_agent.timeutil import datetime_to_us, format_us, now_us, parse_rfc3339_us, to_datetime

__all__ = ["datetime_to_us", "format_us", "now_us", "parse_rfc3339_us", "to_datetime"]
