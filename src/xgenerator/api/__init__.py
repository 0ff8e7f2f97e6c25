"""The HTTP API: app factory, error table, dependencies, schemas and routes."""
