"""Settings, from environment variables, with working defaults. One object, read once.

CAREPATH_DATABASE_URL   where episodes live (default: sqlite file ``carepath.db`` in the
                        working directory; PostgreSQL: ``postgresql+psycopg://user@host/db``)
CAREPATH_DEFINITIONS    more pathway definition files or directories of them, separated by
                        ``os.pathsep``; loaded beside the shipped ones (a file with a shipped
                        definition's id becomes that pathway's current version)
CAREPATH_DEFINITION     one more definition file, as in CAREPATH_DEFINITIONS (older name)
CAREPATH_AUDIT_KEY      the audit chain's HMAC key: 64 hex characters or base64url of >= 32
                        bytes (default: the key file below, made 0600 on first use)
CAREPATH_AUDIT_KEY_FILE the key file (default ``$XDG_CONFIG_HOME/carepath/audit.key``, else
                        ``~/.config/carepath/audit.key``); never put it beside the database
CAREPATH_CHECKPOINT_DIR where signed audit checkpoints go (default: the configuration
                        directory's ``checkpoints/``)
CAREPATH_CHECKPOINT_INTERVAL_MINUTES  how often the scheduler writes one (default 60; 0: never)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathway.audit import AuditKey


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    definition_path: Path | None
    definition_paths: tuple[Path, ...] = ()
    audit_key_text: str | None = None
    audit_key_file: Path | None = None
    checkpoint_dir: Path | None = None
    checkpoint_interval: str | None = None  # minutes, as given (read by checkpoint_seconds)
    config_dir: Path | None = None

    def audit_key(self) -> AuditKey:
        """The audit chain key (``carepath.audit_keys``); AuditKeyError if it is unusable."""
        from carepath.audit_keys import KEY_FILE_NAME, load_audit_key

        return load_audit_key(
            self.audit_key_text, self.audit_key_file or self.configuration() / KEY_FILE_NAME
        )

    def configuration(self) -> Path:
        from carepath.audit_keys import config_dir

        return self.config_dir or config_dir()

    def checkpoints(self) -> Path:
        return self.checkpoint_dir or self.configuration() / "checkpoints"

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
            audit_key_text=os.environ.get("CAREPATH_AUDIT_KEY") or None,
            audit_key_file=_path("CAREPATH_AUDIT_KEY_FILE"),
            checkpoint_dir=_path("CAREPATH_CHECKPOINT_DIR"),
            checkpoint_interval=os.environ.get("CAREPATH_CHECKPOINT_INTERVAL_MINUTES") or None,
        )


def _path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def checkpoint_seconds(settings: Settings) -> float:
    """The scheduler's checkpoint interval in seconds (0: never); ValueError naming the
    variable if it is not a number of minutes >= 0."""
    value = settings.checkpoint_interval
    if value is None:
        return 3600.0
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes < float("inf"):
        raise ValueError(
            f"CAREPATH_CHECKPOINT_INTERVAL_MINUTES: got {value!r}, expected a number of minutes >= 0"
        )
    return minutes * 60
