"""Announcing changes with NOTIFY: the payload vocabulary, the channel, delivery on commit
only, nothing on SQLite, and the listener's connection."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import text

from vault.storage.db import Database
from vault.storage.inuse import current_schema
from vault.storage.notify import Change, ChangeListener, announce, channel_of

CUSTOMER = uuid.UUID("5f1d7a52-8a43-4a59-9a39-0e7c1f6f0c11")


def test_payloads_name_a_kind_and_an_id_or_version_only() -> None:
    """Each change's payload is its kind and a version or pseudonymous id, and parses
    back to the same change."""
    changes = [Change.policy(12), Change.erasure(CUSTOMER), Change.documents()]
    expected = ["policy:12", f"erasure:{CUSTOMER}", "documents"]
    assert expected == [c.payload for c in changes]
    assert changes == [Change.parse(c.payload) for c in changes]


@pytest.mark.parametrize(
    "payload", ["", "policy", "policy:x", "policy:-1", "erasure:not-a-uuid", "documents:3", "x:1"]
)
def test_a_payload_this_version_does_not_know_parses_to_none(payload: str) -> None:
    """A malformed payload, or a kind a newer process may announce, is None (ignored)."""
    assert Change.parse(payload) is None


def test_only_an_erasure_names_a_customer() -> None:
    """``customer_id`` of an erasure is its id; of any other change, a ValueError."""
    assert Change.erasure(CUSTOMER).customer_id == CUSTOMER
    with pytest.raises(ValueError, match="names no customer"):
        _ = Change.policy(1).customer_id


def _listen_for(database: Database, work: str, *, commit: bool) -> list[Change | None]:
    """Listen, announce a policy change in a transaction that commits or rolls back, and
    collect what arrives within a second."""

    async def run() -> list[Change | None]:
        heard: list[Change | None] = []
        async with await ChangeListener.connect(database.engine) as listener:

            def send() -> None:
                session = database._sessions()
                with session:
                    session.begin()
                    announce(session, Change.policy(7))
                    session.execute(text(work))
                    if commit:
                        session.commit()
                    else:
                        session.rollback()

            await asyncio.to_thread(send)

            async def collect() -> None:
                async for change in listener.changes(idle=0.2):
                    heard.append(change)  # noqa: PERF401 - endless: kept as it arrives

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), timeout=1.0)
        return heard

    return asyncio.run(run())


def test_a_change_is_delivered_on_commit_and_never_on_rollback(database: Database) -> None:
    """On PostgreSQL the listener hears an announced change once its transaction commits,
    and nothing of one that rolled back; on SQLite nothing is announced and nothing can
    listen."""
    if database.dialect == "sqlite":
        with database.transaction() as session:
            announce(session, Change.policy(7))  # no statement, no error
        with pytest.raises(ValueError, match="only a PostgreSQL vault"):
            asyncio.run(ChangeListener.connect(database.engine))
        return
    assert [Change.policy(7)] == _listen_for(database, "SELECT 1", commit=True)
    assert _listen_for(database, "SELECT 1", commit=False) == []


def test_the_channel_is_the_schema_s_in_python_and_in_sql(database: Database) -> None:
    """The listener's channel (computed in Python from the schema) is the one the
    sending connection computes in SQL, and two schemas get two channels."""
    if database.dialect == "sqlite":
        assert channel_of("a") != channel_of("b")
        return
    with database.engine.connect() as conn:
        in_sql = conn.scalar(
            text(
                "SELECT 'cvault_' || left(encode(sha256(convert_to("
                "coalesce(current_schema(), 'public'), 'UTF8')), 'hex'), 16)"
            )
        )
    assert channel_of(current_schema(database.engine)) == in_sql
    assert channel_of("tenant_a") != channel_of("tenant_b")
