"""Vehicle presence: online/offline and last-seen, from NATS server events."""
