"""Twins: desired and reported properties, and fleet-wide configurations."""
