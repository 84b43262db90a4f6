"""A GraphQL query's audit goes through the app's group-committed writer; a failed batch
answers an error and no data (fail-closed)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import LocalTokenIssuer
from api.graphql.endpoint import RateLimiter
from audit.entries import AuditEntry
from policies import Role
from tests.conftest import CTX
from vault.audit_trail.loop_writer import LoopWriter
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import Database, StorageUnavailable
from vault.storage.models import AuditEntryRow

ISSUER: Final = "customer-vault"
NAME: Final = "\u067e\u0631\u0648\u06cc\u0646"
QUERY: Final = "query($id: ID!) { customer(id: $id) { firstName } }"


def _ask(client: TestClient, issuer: LocalTokenIssuer, cid: str) -> tuple[int, Any]:
    token = issuer.issue("agent-1", Role.SUPPORT_AGENT)
    response = client.post(
        "/graphql",
        json={"query": QUERY, "variables": {"id": cid}},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "support"},
    )
    return response.status_code, response.json()


def test_a_query_waits_for_its_batch_and_fails_with_it(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the app's lifespan the query's entry is committed by the writer before the
    answer (on PostgreSQL, the group commit on the event loop of the hot read); when the
    batch's commit fails, the answer is an error without the name."""
    with vault.unit(CTX) as s:
        cid = str(vault.customers.create(s, CustomerInput(first_name=NAME)).id)
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000)
    )
    assert vault.writer is not None
    with TestClient(app) as client:
        hot = app.state.graphql.hot
        stats = vault.writer.stats if hot.writer is None else hot.writer.stats
        ok_status, ok_body = _ask(client, issuer, cid)
        committed = stats.requests

        def refuse(db: Database, entries: Sequence[AuditEntry]) -> None:
            raise StorageUnavailable("injected batch failure")

        async def refuse_on_loop(*_args: Any, **_kwargs: Any) -> None:
            raise StorageUnavailable("injected batch failure")

        monkeypatch.setattr(vault.audit, "write_now", refuse)
        if hot.reader is not None:
            monkeypatch.setattr(hot.reader.pool, "execute", refuse_on_loop)
        failed_status, failed_body = _ask(client, issuer, cid)
        failed_batches = stats.failed
    assert (ok_status, ok_body["data"]["customer"]["firstName"], committed) == (200, NAME, 1)
    assert NAME not in str(failed_body)
    assert (failed_status == 200 and failed_body.get("data") is not None) is False
    assert failed_batches == 1


def test_concurrent_hot_reads_whose_flush_fails_all_answer_an_error(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, on the event loop: eight concurrent reads whose audit flushes fail
    (the driver loses the connection) all answer 503 without the name; every one of
    them went through a failed flush and none of their entries was written."""
    if vault.db.dialect != "postgresql":
        pytest.skip("the event-loop group commit is PostgreSQL's")
    with vault.unit(CTX) as s:
        cid = str(vault.customers.create(s, CustomerInput(first_name=NAME)).id)
    issuer = LocalTokenIssuer.load_or_create(tmp_path / "jwt.json", ISSUER, ISSUER)
    app = create_app(
        vault, verifier=issuer.verifier(), local_issuer=issuer, rate_limiter=RateLimiter(10_000),
        webhook_every=None, sequence_every=None, listen=False,
    )  # fmt: skip
    thread_writer = vault.writer
    assert thread_writer is not None
    token = issuer.issue("agent-1", Role.SUPPORT_AGENT)
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "support"}

    async def lose(*_args: Any, **_kwargs: Any) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    async def scenario() -> tuple[list[int], list[str], int, int, int]:
        async with app.router.lifespan_context(app):
            hot = app.state.graphql.hot
            assert hot.reader is not None
            on_loop: LoopWriter = hot.writer
            assert thread_writer.on_loop is on_loop  # the hot reads' appends go there
            monkeypatch.setattr(hot.reader.pool, "execute", lose)
            before = _entries(vault)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                replies = await asyncio.gather(*(
                    client.post("/graphql", json={"query": QUERY, "variables": {"id": cid}},
                                headers=headers)
                    for _ in range(8)
                ))  # fmt: skip
            stats = on_loop.stats
            return (
                [r.status_code for r in replies], [r.text for r in replies],
                stats.requests, stats.failed - stats.batches, _entries(vault) - before,
            )  # fmt: skip

    statuses, bodies, requests, succeeded, written = asyncio.run(scenario())
    assert thread_writer.on_loop is None  # detached by the lifespan's end
    leaked = [b for b in bodies if NAME in b or '"data"' in b]
    expected: tuple[list[int], int, int, int, list[str]] = ([503] * 8, 8, 0, 0, [])
    assert expected == (statuses, requests, succeeded, written, leaked)


def _entries(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEntryRow)) or 0)
