"""Moved to `carcloud_agent.mqtt` (the agent's distribution); this name stays for old imports."""

from carcloud_agent.mqtt import ConnectRefused, MqttClient, MqttError, Will

__all__ = ["ConnectRefused", "MqttClient", "MqttError", "Will"]
