"""Errors of the car side, the root of carcloud's error tree (carcloud/errors.py adds the rest).

CarcloudError                 base of everything carcloud raises on purpose
├── ConfigError               bad settings: an agent config, a port in use
└── ValidationError           bad input from a caller (a VIN, a timestamp, a value)
    └── ProtocolError         a message on the car↔cloud link that breaks the protocol
"""

from __future__ import annotations


class CarcloudError(Exception):
    """Base class for every error carcloud raises on purpose."""


class ConfigError(CarcloudError):
    """Settings that cannot work: a port in use, an unusable data dir, a bad agent config."""


class ValidationError(CarcloudError):
    """Input from a caller that breaks a rule; the message says which rule."""


class ProtocolError(ValidationError):
    """A car↔cloud message that breaks docs/protocol.md; the message says which rule."""
