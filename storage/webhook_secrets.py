"""Webhook signing secrets at rest: encrypted, so that a copy of the database reveals none.

Each secret (the 24 random bytes behind ``whsec_<base64>``) is stored as ``v1:<base64 of nonce
and AES-256-GCM ciphertext>`` under a key derived (HKDF) from the deployment's audit key, which
is never in the database (``carepath.audit_keys``). The subscription id is the associated data:
a secret copied onto another subscription's row does not decrypt. A database moved to a
deployment with another audit key cannot sign: ``SecretUnreadable`` says so.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pathway.audit import AuditKey

PREFIX = "whsec_"
_PURPOSE = b"carepath webhook signing secrets v1"
_VERSION = "v1:"


class SecretUnreadable(Exception):
    """A stored secret does not decrypt under this deployment's audit key."""


def new_secret() -> bytes:
    return os.urandom(24)


def shown(secret: bytes) -> str:
    """The secret as Standard Webhooks writes it: ``whsec_`` and its base64."""
    return PREFIX + base64.b64encode(secret).decode()


def encrypt(key: AuditKey, subscription_id: str, secret: bytes) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key.derive(_PURPOSE)).encrypt(nonce, secret, subscription_id.encode())
    return _VERSION + base64.b64encode(nonce + sealed).decode()


def decrypt(key: AuditKey, subscription_id: str, stored: str) -> bytes:
    if not stored.startswith(_VERSION):
        raise SecretUnreadable(f"subscription {subscription_id}: unknown secret format")
    raw = base64.b64decode(stored[len(_VERSION) :])
    try:
        return AESGCM(key.derive(_PURPOSE)).decrypt(raw[:12], raw[12:], subscription_id.encode())
    except InvalidTag:
        raise SecretUnreadable(
            f"subscription {subscription_id}: its secret does not decrypt under this "
            "deployment's audit key (CAREPATH_AUDIT_KEY / the key file); rotate it"
        ) from None
