"""Running carcloud: the data dir, the embedded nats-server and the worker roles."""
