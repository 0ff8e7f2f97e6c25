"""The web dashboard served at /ui."""
