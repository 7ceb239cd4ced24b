"""carepath."""
