"""A stand-in KUKSA databroker: the real gRPC API (kuksa.val.v1 Get/Set) over an in-memory store.

The databroker itself (a Rust binary) cannot be installed here; this serves the same
protocol on a free port, so the agent's real kuksa-client talks real gRPC to it.
"""

from __future__ import annotations

from typing import Any

import grpc
from kuksa.val.v1 import types_pb2, val_pb2, val_pb2_grpc

from carcloud.runtime.launcher import free_port


def datapoint(value: Any) -> types_pb2.Datapoint:
    if isinstance(value, bool):
        return types_pb2.Datapoint(bool=value)
    if isinstance(value, int):
        return types_pb2.Datapoint(int32=value)
    if isinstance(value, float):
        return types_pb2.Datapoint(float=value)
    return types_pb2.Datapoint(string=str(value))


def plain(point: types_pb2.Datapoint) -> Any:
    kind = point.WhichOneof("value")
    return getattr(point, kind) if kind else None


class Databroker(val_pb2_grpc.VALServicer):  # type: ignore[misc]
    """Current values that tests set, actuator targets that clients set."""

    def __init__(self) -> None:
        self.current: dict[str, Any] = {}
        self.targets: dict[str, Any] = {}

    async def Get(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
        entries = []
        for entry in request.entries:
            if entry.view == types_pb2.VIEW_METADATA:
                # Clients read the data type before they set a value.
                kind = type(self.current.get(entry.path, 0.0))
                data_type = {
                    bool: types_pb2.DATA_TYPE_BOOLEAN,
                    int: types_pb2.DATA_TYPE_INT32,
                    float: types_pb2.DATA_TYPE_FLOAT,
                }.get(kind, types_pb2.DATA_TYPE_STRING)
                entries.append(
                    types_pb2.DataEntry(
                        path=entry.path, metadata=types_pb2.Metadata(data_type=data_type)
                    )
                )
            elif entry.path in self.current:
                entries.append(
                    types_pb2.DataEntry(path=entry.path, value=datapoint(self.current[entry.path]))
                )
            else:
                entries.append(types_pb2.DataEntry(path=entry.path))
        return val_pb2.GetResponse(entries=entries)

    async def Set(self, request: Any, context: Any) -> Any:  # noqa: N802
        for update in request.updates:
            self.targets[update.entry.path] = plain(update.entry.actuator_target)
        return val_pb2.SetResponse()

    async def GetServerInfo(self, request: Any, context: Any) -> Any:  # noqa: N802
        return val_pb2.GetServerInfoResponse(name="carcloud stand-in", version="test")


async def serve(broker: Databroker) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    val_pb2_grpc.add_VALServicer_to_server(broker, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, port
