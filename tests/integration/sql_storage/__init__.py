"""Integration tests: sql_storage."""
