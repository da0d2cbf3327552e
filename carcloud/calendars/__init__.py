"""Calendars: a driver's calendar accounts, synced in the cloud, and the agenda made from them."""
