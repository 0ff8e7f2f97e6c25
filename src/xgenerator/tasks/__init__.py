"""Celery: the app and its configuration, the dispatcher, and the thin tasks a worker runs."""
