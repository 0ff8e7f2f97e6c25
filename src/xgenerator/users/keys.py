"""API keys: `xg_<prefix>_<secret>`; only the prefix and a SHA-256 of the secret are stored.

The secret carries 256 bits of randomness, so a fast hash is enough (no password stretching
needed), and the prefix lets us find the row without comparing against every hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_SCHEME = "xg"


@dataclass(frozen=True)
class NewKey:
    prefix: str
    secret_hash: str
    plaintext: str  # shown to the user once, never stored


def generate() -> NewKey:
    prefix = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewKey(prefix, hash_secret(secret), f"{KEY_SCHEME}_{prefix}_{secret}")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(plaintext: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)


# Compared against when no row matches the prefix, so a wrong prefix costs the same time as a
# wrong secret and response timing does not reveal which prefixes exist.
DUMMY_HASH = hash_secret("no such key")
