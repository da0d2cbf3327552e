"""Data-collection campaigns: definitions and conditions (shared with the agent), the service."""
