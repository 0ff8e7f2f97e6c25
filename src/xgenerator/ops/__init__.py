"""Operating the service: Prometheus metrics, status, worker heartbeats, broker reads."""
