"""The REST API under /api/v1, with its OpenAPI document at /api/v1/openapi.json."""
