"""Drivers: profiles of the people who drive a brand's vehicles, and who drives which."""
