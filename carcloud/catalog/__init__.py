"""The signal catalog: shared with the car, defined in carcloud_agent.catalog."""

from carcloud_agent.catalog.catalog import (
    SignalCatalog,
    SignalSpec,
    SignalValue,
    SignalValueError,
    Validator,
    ValueKind,
    default_catalog,
    kind_for_datatype,
)

__all__ = [
    "SignalCatalog",
    "SignalSpec",
    "SignalValue",
    "SignalValueError",
    "Validator",
    "ValueKind",
    "default_catalog",
    "kind_for_datatype",
]
