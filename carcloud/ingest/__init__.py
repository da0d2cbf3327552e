"""Telemetry ingest: decode, validate, store, acknowledge."""
