"""Settings, from environment variables, with working defaults. One object, read once.

CAREPATH_DATABASE_URL   where episodes live (default: sqlite file ``carepath.db`` in the
                        working directory; PostgreSQL: ``postgresql+psycopg://user@host/db``)
CAREPATH_DEFINITION     a pathway definition file (default: the shipped L1–L2 pathway)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    definition_path: Path | None

    @classmethod
    def from_env(cls) -> Settings:
        definition = os.environ.get("CAREPATH_DEFINITION")
        return cls(
            database_url=os.environ.get("CAREPATH_DATABASE_URL")
            or f"sqlite:///{Path.cwd() / 'carepath.db'}",
            definition_path=Path(definition) if definition else None,
        )
