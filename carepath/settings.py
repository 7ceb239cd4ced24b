"""Settings, from environment variables, with working defaults. One object, read once.

CAREPATH_DATABASE_URL   where episodes live (default: sqlite file ``carepath.db`` in the
                        working directory; PostgreSQL: ``postgresql+psycopg://user@host/db``)
CAREPATH_DEFINITIONS    more pathway definition files or directories of them, separated by
                        ``os.pathsep``; loaded beside the shipped ones (a file with a shipped
                        definition's id becomes that pathway's current version)
CAREPATH_DEFINITION     one more definition file, as in CAREPATH_DEFINITIONS (older name)
CAREPATH_SESSION_IDLE_MINUTES  a page session unused this long ends (default 30)
CAREPATH_SESSION_MAX_HOURS     a page session ends this long after sign-in, used or not (default 12)
CAREPATH_BASE_URL       where the pages' static files are served from, e.g.
                        ``https://carepath.example.org`` or ``/carepath`` behind a proxy
                        (default: empty, so asset URLs are ``/static/…`` on the same host:
                        never built from the request's Host header)
CAREPATH_SECURE_COOKIES 1: the pages' cookies are always marked Secure, for a TLS-terminating proxy
                        that forwards plain http (default 0: Secure when the request is https)
CAREPATH_MIGRATION_URL  PostgreSQL: the owner role's URL, which ``carepath db upgrade`` migrates
                        with (default: CAREPATH_DATABASE_URL); the app's role needs no DDL
CAREPATH_CLOCK_TOLERANCE_SECONDS  how far (seconds, default 30) a scheduler host's clock may
                        differ from the PostgreSQL server's before its workers refuse to run
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
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathway.audit import AuditKey

SESSION_IDLE_MINUTES = 30.0
SESSION_MAX_HOURS = 12.0


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    definition_path: Path | None
    definition_paths: tuple[Path, ...] = ()
    session_idle_minutes: float = SESSION_IDLE_MINUTES
    session_max_hours: float = SESSION_MAX_HOURS
    base_url: str = ""
    secure_cookies: bool = False
    clock_tolerance_seconds: float = 30.0
    migration_url: str | None = None

    audit_key_text: str | None = None
    audit_key_file: Path | None = None
    checkpoint_dir: Path | None = None
    checkpoint_interval: str | None = None  # minutes, as given (read by checkpoint_seconds)
    config_dir: Path | None = None

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.session_max_hours)

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
            session_idle_minutes=_positive("CAREPATH_SESSION_IDLE_MINUTES", SESSION_IDLE_MINUTES),
            session_max_hours=_positive("CAREPATH_SESSION_MAX_HOURS", SESSION_MAX_HOURS),
            base_url=os.environ.get("CAREPATH_BASE_URL", "").strip().rstrip("/"),
            secure_cookies=_flag("CAREPATH_SECURE_COOKIES"),
            clock_tolerance_seconds=_seconds("CAREPATH_CLOCK_TOLERANCE_SECONDS", 30.0),
            migration_url=os.environ.get("CAREPATH_MIGRATION_URL") or None,
            audit_key_text=os.environ.get("CAREPATH_AUDIT_KEY") or None,
            audit_key_file=_path("CAREPATH_AUDIT_KEY_FILE"),
            checkpoint_dir=_path("CAREPATH_CHECKPOINT_DIR"),
            checkpoint_interval=os.environ.get("CAREPATH_CHECKPOINT_INTERVAL_MINUTES") or None,
        )


def _path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def checkpoint_seconds(settings: Settings) -> float:
    """The scheduler's checkpoint interval in seconds (0: never); SettingsError naming the
    variable if it is not a number of minutes >= 0."""
    value = settings.checkpoint_interval
    if value is None:
        return 3600.0
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes < float("inf"):
        raise SettingsError(
            f"CAREPATH_CHECKPOINT_INTERVAL_MINUTES: got {value!r}, expected a number of minutes >= 0"
        )
    return minutes * 60


def _positive(name: str, default: float) -> float:
    """A positive number from the environment variable ``name`` (unset or empty: ``default``)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1e6:
        raise SettingsError(f"{name}: got {text!r}, expected a positive number below 1000000")
    return value


def _flag(name: str) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off (unset or empty: off)."""
    text = os.environ.get(name, "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}: got {text!r}, expected 1 or 0 (true/false, yes/no, on/off)")


def _seconds(name: str, default: float) -> float:
    """A non-negative number of seconds from the environment; a clear error otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"{name}: got {raw!r}, expected a number of seconds, 0 or more")
    return value


class SettingsError(ValueError):
    """An environment variable with a value carepath cannot use (named in the message)."""
