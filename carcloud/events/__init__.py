"""Durable domain events: every slice's state changes, written with the change and relayed."""
