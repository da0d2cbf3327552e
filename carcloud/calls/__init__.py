"""Calls from the car (one-tap join of any meeting) and carcloud's own audio rooms."""
