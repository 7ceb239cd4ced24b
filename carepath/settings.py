"""Settings, from environment variables, with working defaults. One object, read once.

CAREPATH_DATABASE_URL   where episodes live (default: sqlite file ``carepath.db`` in the
                        working directory; PostgreSQL: ``postgresql+psycopg://user@host/db``)
CAREPATH_DEFINITIONS    more pathway definition files or directories of them, separated by
                        ``os.pathsep``; loaded beside the shipped ones (a file with a shipped
                        definition's id becomes that pathway's current version)
CAREPATH_DEFINITION     one more definition file, as in CAREPATH_DEFINITIONS (older name)
CAREPATH_BASE_URL       where the pages' static files are served from, e.g.
                        ``https://carepath.example.org`` or ``/carepath`` behind a proxy
                        (default: empty, so asset URLs are ``/static/…`` on the same host:
                        never built from the request's Host header)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    definition_path: Path | None
    definition_paths: tuple[Path, ...] = ()
    base_url: str = ""

    def definition_files(self) -> list[Path]:
        """The configured definition files, directories expanded (``*.json``, ``*.yaml``)."""
        named = [*self.definition_paths, *([self.definition_path] if self.definition_path else [])]
        out: list[Path] = []
        for path in named:
            if path.is_dir():
                out += sorted(p for p in path.iterdir() if p.suffix in (".json", ".yaml", ".yml"))
            else:
                out.append(path)
        return out

    @classmethod
    def from_env(cls) -> Settings:
        definition = os.environ.get("CAREPATH_DEFINITION")
        many = os.environ.get("CAREPATH_DEFINITIONS", "")
        return cls(
            database_url=os.environ.get("CAREPATH_DATABASE_URL")
            or f"sqlite:///{Path.cwd() / 'carepath.db'}",
            definition_path=Path(definition) if definition else None,
            definition_paths=tuple(Path(p) for p in many.split(os.pathsep) if p),
            base_url=os.environ.get("CAREPATH_BASE_URL", "").strip().rstrip("/"),
        )
