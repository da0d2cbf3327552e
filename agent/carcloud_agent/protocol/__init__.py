"""The car↔cloud protocol: one typed codec per message kind, the topics, and backoff.

Every reader and writer of the link uses these: the agent and the simulator on the
car side; ingest, the control role and the twins on the cloud side. docs/protocol.md
describes each kind and names its codec here.

    kind            topic (under vehicles/{vin}/)   codec module: encoder, decoder
    telemetry       telemetry                       telemetry: encode_sample, encode_batch,
                                                               decode_telemetry
    status          status                          status: encode_status, decode_status
    command         commands/{id}                   commands: encode_command, decode_command
    command result  commands/{id}/result            commands: encode_result, decode_result
    desired twin    twin/desired                    twin: encode_desired, decode_desired
    reported twin   twin/reported                   twin: encode_reported, decode_reported
    commit receipt  receipts                        receipts: encode_receipt, decode_receipt
    notification    notifications                   notifications: encode_notification,
                                                                   decode_notification

Every decoder raises ProtocolError (a ValidationError) saying what is wrong.
"""

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol.backoff import Backoff, backoff_ceiling, full_jitter
from carcloud_agent.protocol.commands import (
    Command,
    CommandResult,
    decode_command,
    decode_result,
    encode_command,
    encode_result,
)
from carcloud_agent.protocol.notifications import (
    Notification,
    NotificationAction,
    decode_notification,
    encode_notification,
)
from carcloud_agent.protocol.receipts import SeqRange, decode_receipt, encode_receipt, seq_ranges
from carcloud_agent.protocol.status import OFFLINE, ONLINE, Status, decode_status, encode_status
from carcloud_agent.protocol.telemetry import (
    Sample,
    TelemetryBatch,
    TelemetryError,
    TelemetrySample,
    decode_telemetry,
    encode_batch,
    encode_sample,
)
from carcloud_agent.protocol.twin import (
    Desired,
    Reported,
    decode_desired,
    decode_reported,
    encode_desired,
    encode_reported,
)

__all__ = [
    "OFFLINE",
    "ONLINE",
    "Backoff",
    "Command",
    "CommandResult",
    "Desired",
    "Notification",
    "NotificationAction",
    "ProtocolError",
    "Reported",
    "Sample",
    "SeqRange",
    "Status",
    "TelemetryBatch",
    "TelemetryError",
    "TelemetrySample",
    "backoff_ceiling",
    "decode_command",
    "decode_desired",
    "decode_notification",
    "decode_receipt",
    "decode_reported",
    "decode_result",
    "decode_status",
    "decode_telemetry",
    "encode_batch",
    "encode_command",
    "encode_desired",
    "encode_notification",
    "encode_receipt",
    "encode_reported",
    "encode_result",
    "encode_sample",
    "encode_status",
    "full_jitter",
    "seq_ranges",
]
