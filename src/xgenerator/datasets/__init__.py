"""Datasets: ingest uploaded files (`ingest`) and keep them (`registry`)."""
