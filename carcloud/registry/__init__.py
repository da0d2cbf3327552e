"""The registry: brands, vehicles and their credentials, API keys."""
