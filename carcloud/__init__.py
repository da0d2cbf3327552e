"""carcloud: an open, self-hostable automotive cloud."""

__version__ = "0.1.0"
