"""Integration tests: web."""
