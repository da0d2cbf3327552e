"""Webhooks: signed deliveries of domain events to the URLs apps subscribed."""
