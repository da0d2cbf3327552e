"""Vehicle authentication: the NATS auth-callout service and the JWTs it signs."""
