"""The media server carcloud runs for its audio rooms (Janus)."""
