"""The web pages carcloud serves itself (no CDN: they work offline)."""
