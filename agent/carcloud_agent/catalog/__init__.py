"""The carcloud signal catalog: the VSS 5.1 signals cars report, and their value checks."""

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
