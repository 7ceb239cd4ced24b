"""Tests against real SQLite and PostgreSQL: storage, scheduler, API, pages."""
