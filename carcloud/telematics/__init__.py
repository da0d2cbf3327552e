"""Telematics derived from committed telemetry: trips, charging sessions, tariffs."""
