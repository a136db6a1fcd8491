"""The API keys aggregate: create, find, list and revoke keys by their public id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, or_, select, update

from .records import ApiKeyRecord
from .schema import api_keys

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("find_active", "insert", "list_all", "revoke")


async def insert(
    db: Database,
    *,
    key_id: str,
    name: str,
    secret_hash: str,
    scopes: Collection[str],
    expires_in_s: float | None,
) -> ApiKeyRecord:
    """Store a new key; ``expires_in_s`` counts from the database clock."""

    def job(conn: Connection) -> ApiKeyRecord:
        now = db.now()
        row = (
            conn.execute(
                db.insert(api_keys)
                .values(
                    id=key_id,
                    name=name,
                    secret_hash=secret_hash,
                    scopes=sorted(scopes),
                    created_at=now,
                    expires_at=None if expires_in_s is None else now + expires_in_s,
                )
                .returning(*api_keys.c)
            )
            .mappings()
            .one()
        )
        return ApiKeyRecord.from_row(row)

    return await db.write(job)


async def find_active(db: Database, key_id: str) -> ApiKeyRecord | None:
    """The key with this id if it is neither revoked nor expired (by the database clock)."""
    statement = db.statement(
        "api_keys.find_active",
        lambda: select(api_keys).where(
            and_(
                api_keys.c.id == bindparam("key_id"),
                api_keys.c.revoked_at.is_(None),
                or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > db.now()),
            )
        ),
    )
    row = await db.read_point(
        lambda conn: conn.execute(statement, {"key_id": key_id}).mappings().first()
    )
    return None if row is None else ApiKeyRecord.from_row(row)


async def list_all(db: Database) -> list[ApiKeyRecord]:
    """Every key, newest first (revoked and expired ones included)."""
    rows = await db.rows(select(api_keys).order_by(api_keys.c.created_at.desc()))
    return [ApiKeyRecord.from_row(r) for r in rows]


async def revoke(db: Database, key_id: str) -> ApiKeyRecord | None:
    """Revoke the key at once; None when no key has this id. Revoking twice is harmless."""

    def job(conn: Connection) -> ApiKeyRecord | None:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=db.now())
        )
        row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        return None if row is None else ApiKeyRecord.from_row(row)

    return await db.write(job)
