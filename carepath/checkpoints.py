"""Signed audit checkpoints: an anchor for the audit chains kept outside the database.

A checkpoint records the database it is of, the time, the key id the chains are under, the
episode count and every chain's head (episode id, seq, hash), signed with Ed25519
(``checkpoint-signing.key`` in the configuration directory, ``carepath.audit_keys``). It is one
file in the checkpoint directory (``CAREPATH_CHECKPOINT_DIR``, default the configuration
directory's ``checkpoints/``), named by database, time and content, so writing the same
checkpoint twice writes one file.

``verify`` compares the database with the latest checkpoint of it: every checkpointed episode
still exists and its chain still holds the checkpointed hash at the checkpointed seq, and the
episode count did not drop. That catches a chain cut short, rewound or recomputed, and an
episode deleted from every table, all of which a chain alone cannot show. What was written
after the last checkpoint and then deleted leaves no trace: checkpoint often.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from carepath.audit_keys import (
    PUBLIC_KEY_NAME,
    SIGNING_KEY_NAME,
    AuditKeyError,
    read_or_create,
    write_public,
)

FORMAT = "carepath-audit-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint file is unreadable, of another database, or its signature is bad."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a checkpoint vouches for; ``path`` is the file it was read from or written to."""

    database: str
    at: datetime
    key_id: str
    episodes: int
    heads: dict[str, tuple[int, str]]  # episode id -> (seq, hash)
    path: Path | None = None

    def body(self) -> bytes:
        """The signed bytes: canonical JSON (sorted keys), heads in episode-id order."""
        return orjson.dumps(
            {
                "format": FORMAT,
                "database": self.database,
                "at": self.at.astimezone(UTC).isoformat(),
                "key_id": self.key_id,
                "episodes": self.episodes,
                "heads": [[eid, seq, h] for eid, (seq, h) in sorted(self.heads.items())],
            },
            option=orjson.OPT_SORT_KEYS,
        )


class Signer:
    """The Ed25519 key pair of one configuration directory (made 0600 on first use)."""

    def __init__(self, config: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        def make() -> bytes:
            return Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )

        path = config / SIGNING_KEY_NAME
        key = serialization.load_pem_private_key(read_or_create(path, make), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditKeyError(f"{path}: not an Ed25519 private key")
        self._key = key
        self.public = key.public_key()
        write_public(
            config / PUBLIC_KEY_NAME,
            self.public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def verify(self, signature: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def database_identity(url: str) -> str:
    """The database a checkpoint is of: its URL without password (a SQLite file's absolute
    path), which no one writing the database can change."""
    from sqlalchemy.engine import URL, make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return f"sqlite:///{Path(parsed.database).resolve()}"
    bare = URL.create(
        parsed.get_backend_name(), parsed.username, None, parsed.host, parsed.port, parsed.database
    )
    return bare.render_as_string(hide_password=False)


def _prefix(database: str) -> str:
    return hashlib.sha256(database.encode()).hexdigest()[:16]


def write_checkpoint(checkpoint: Checkpoint, signer: Signer, to: Path) -> Path:
    """Sign and write ``checkpoint``; ``to`` is a directory (made if absent) or a file name."""
    body = checkpoint.body()
    document = {
        "checkpoint": orjson.loads(body),
        "signature": base64.urlsafe_b64encode(signer.sign(body)).decode(),
    }
    if to.suffix != ".json" or to.is_dir():
        stamp = checkpoint.at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        digest = hashlib.sha256(body).hexdigest()[:8]
        to.mkdir(parents=True, exist_ok=True, mode=0o700)
        to = to / f"{_prefix(checkpoint.database)}-{stamp}-{digest}.json"
    to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = to.with_name(f".{to.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(document) + b"\n")
    tmp.replace(to)
    return to


def latest_checkpoint(directory: Path, database: str, signer: Signer) -> Checkpoint | None:
    """The newest checkpoint of ``database`` in ``directory``, its signature verified first
    (CheckpointError if it is bad); None if there is none."""
    if not directory.is_dir():
        return None
    files = sorted(directory.glob(f"{_prefix(database)}-*.json"))
    if not files:
        return None
    return read_checkpoint(files[-1], signer, database)


def read_checkpoint(path: Path, signer: Signer, database: str | None = None) -> Checkpoint:
    try:
        document = orjson.loads(path.read_bytes())
        body = orjson.dumps(document["checkpoint"], option=orjson.OPT_SORT_KEYS)
        signature = base64.urlsafe_b64decode(document["signature"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable ({exc})") from None
    if not signer.verify(signature, body):
        raise CheckpointError(
            f"checkpoint {path}: its signature does not verify (altered, or not signed by "
            "this configuration's checkpoint key)"
        )
    fields = document["checkpoint"]
    if fields.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path}: format {fields.get('format')!r}, expected {FORMAT}"
        )
    if database is not None and fields["database"] != database:
        raise CheckpointError(
            f"checkpoint {path}: of database {fields['database']!r}, expected {database!r}"
        )
    return Checkpoint(
        database=fields["database"],
        at=datetime.fromisoformat(fields["at"]),
        key_id=fields["key_id"],
        episodes=fields["episodes"],
        heads={eid: (seq, h) for eid, seq, h in fields["heads"]},
        path=path,
    )
