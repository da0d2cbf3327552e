"""Messaging: the embedded nats-server, the topic scheme and the JetStream streams."""
