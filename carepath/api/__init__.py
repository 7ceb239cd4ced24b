"""The carepath HTTP API: JSON under ``/api/``, OpenAPI at ``/openapi.json``. See ``app.py``."""

from __future__ import annotations

from carepath.api.app import create_api

__all__ = ["create_api"]
