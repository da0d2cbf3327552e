"""Geofences: circles, polygons and corridors per brand, and the visits cars make to them."""
