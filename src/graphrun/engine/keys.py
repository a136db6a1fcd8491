"""API keys: minted here, shown once, stored as a SHA-256 hash, checked on every request.

A token reads ``grk_<id>_<secret>``: ``id`` (12 hex characters) is public and finds the key
in one indexed lookup; ``secret`` is 32 random bytes (URL-safe base64) whose SHA-256 is all
the database keeps. Scopes are ordered: ``admin`` includes ``write``, which includes ``read``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection

from graphrun import errors
from graphrun.storage import Database
from graphrun.storage import api_keys as store
from graphrun.storage.records import ApiKeyRecord

__all__ = ("ApiKeys", "IssuedKey", "Scope")

TOKEN_PREFIX = "grk_"  # noqa: S105 (a prefix, not a secret)
_TOKEN = re.compile(r"grk_([0-9a-f]{12})_([A-Za-z0-9_-]{43,128})")
_NAME = re.compile(r"[\w .@:/-]{1,100}")


class Scope(enum.StrEnum):
    """What a key may do; each scope includes the ones below it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def includes(self, other: Scope) -> bool:
        """Whether a key with this scope may do what ``other`` allows."""
        return _RANK[self] >= _RANK[other]


#: Each scope's place in the order (a key's stored scope names map here).
_RANK: dict[str, int] = {scope.value: i for i, scope in enumerate(Scope)}


class IssuedKey:
    """A key just created: its record and the token, which is never shown again."""

    def __init__(self, record: ApiKeyRecord, token: str) -> None:
        self.record = record
        self.token = token


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """Create, verify, list and revoke the API keys of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, name: str, scopes: Collection[str], *, expires_in_s: float | None = None
    ) -> IssuedKey:
        """Mint a key; the returned token is the only copy of its secret.

        Raises:
            ValidationFailed: The name, a scope or the expiry is invalid.
        """
        problems = []
        if not _NAME.fullmatch(name):
            problems.append({"pointer": "/name", "message": "1-100 letters, digits, ' .@:/_-'"})
        try:
            parsed = sorted({Scope(s) for s in scopes}, key=_RANK.__getitem__)
        except ValueError:
            parsed = []
        if not parsed:
            problems.append({"pointer": "/scopes", "message": f"one or more of {', '.join(Scope)}"})
        if expires_in_s is not None and not 0 < expires_in_s <= 10 * 365 * 86400:
            problems.append({"pointer": "/expires_in", "message": "between 1 s and 10 years"})
        if problems:
            raise errors.ValidationFailed("API key", problems)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = await store.insert(
            self._db,
            key_id=key_id,
            name=name,
            secret_hash=_hash(secret),
            scopes=[s.value for s in parsed],
            expires_in_s=expires_in_s,
        )
        return IssuedKey(record, f"{TOKEN_PREFIX}{key_id}_{secret}")

    async def verify(self, token: str) -> ApiKeyRecord | None:
        """The active key this token belongs to, or None (malformed, unknown, revoked, expired)."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        record = await store.find_active(self._db, key_id)
        if record is None or not hmac.compare_digest(record.secret_hash, _hash(secret)):
            return None
        return record

    @staticmethod
    def allows(record: ApiKeyRecord, required: Scope) -> bool:
        """Whether the key's scopes include ``required``."""
        return max((_RANK.get(s, -1) for s in record.scopes), default=-1) >= _RANK[required]

    async def list(self) -> list[ApiKeyRecord]:
        """Every key, newest first."""
        return await store.list_all(self._db)

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke a key at once.

        Raises:
            NotFound: No key has this id.
        """
        record = await store.revoke(self._db, key_id)
        if record is None:
            raise errors.NotFound(f"No API key has id {key_id!r}.", key_id=key_id)
        return record
