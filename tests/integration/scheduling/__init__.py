"""Integration tests: scheduling."""
