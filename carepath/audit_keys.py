"""The secrets of the tamper-evident audit, kept outside the database: the chain key and the
checkpoint signing key.

The chain key (HMAC-SHA256) is ``CAREPATH_AUDIT_KEY`` — 64 hexadecimal characters, or
base64url of at least 32 bytes — or else the key file (``CAREPATH_AUDIT_KEY_FILE``, default
``$XDG_CONFIG_HOME/carepath/audit.key`` or ``~/.config/carepath/audit.key``), made with mode
0600 on first use. The Ed25519 key that signs checkpoints is ``checkpoint-signing.key`` (0600)
in the same configuration directory, its public half ``checkpoint-signing.pub`` beside it.

Neither is ever beside the database: a copied database file then carries no key, and whoever
can write the database cannot recompute a chain or sign a checkpoint. Files are created whole
and exclusively (written to a temporary name, then hard-linked into place), so two processes
starting at once agree on one key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
import string
from collections.abc import Callable
from pathlib import Path

from pathway.audit import KEY_BYTES, AuditKey

KEY_FILE_NAME = "audit.key"
SIGNING_KEY_NAME = "checkpoint-signing.key"
PUBLIC_KEY_NAME = "checkpoint-signing.pub"


_BASE64URL = frozenset(string.ascii_letters + string.digits + "-_")


class AuditKeyError(Exception):
    """A configured key is missing, malformed, or readable by others: names which and why."""


def config_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/carepath``, else ``~/.config/carepath``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "carepath"


def parse_key(text: str, where: str) -> AuditKey:
    """A key written as 64 hex characters or as base64url (of at least 32 bytes)."""
    text = text.strip()
    secret: bytes | None = None
    if text and all(c in string.hexdigits for c in text):  # hex: exactly 64 digits
        secret = bytes.fromhex(text) if len(text) == 2 * KEY_BYTES else None
    elif text and all(c in _BASE64URL for c in text.rstrip("=")):
        try:
            secret = base64.b64decode(text + "=" * (-len(text) % 4), b"-_", validate=True)
        except (binascii.Error, ValueError):
            secret = None
    if secret is None or len(secret) < KEY_BYTES:
        raise AuditKeyError(
            f"{where}: got a value of {len(text)} characters, expected 64 hexadecimal characters "
            f"or base64url of at least {KEY_BYTES} bytes (make one with: "
            'python -c "import secrets; print(secrets.token_hex(32))")'
        )
    return AuditKey(secret)


def load_audit_key(environ_key: str | None, key_file: Path) -> AuditKey:
    """The configured chain key: the environment's if set, else the key file's (made on first
    use)."""
    if environ_key:
        return parse_key(environ_key, "CAREPATH_AUDIT_KEY")
    data = read_or_create(key_file, lambda: (secrets.token_hex(KEY_BYTES) + "\n").encode())
    return parse_key(data.decode("ascii", "replace"), f"audit key file {key_file}")


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes, creating it (mode 0600, its directory 0700) with ``make()`` if absent.
    A file that others can read is refused: the secret would no longer be one."""
    if not path.exists():
        _create_exclusive(path, make())
    with path.open("rb") as key_file:  # the mode checked is the mode of the file read
        mode = stat.S_IMODE(os.fstat(key_file.fileno()).st_mode)
        if mode & 0o077:
            raise AuditKeyError(
                f"{path}: mode {mode:04o} lets others read it, expected 0600 (chmod 600 {path})"
            )
        return key_file.read()


def _create_exclusive(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_public(path: Path, data: bytes) -> None:
    """A public file (the checkpoint verifying key), created once, readable by all."""
    if not path.exists():
        _create_exclusive(path, data, 0o644)
