"""Scenario files replayed end to end, in process and through the ``carepath`` command."""
