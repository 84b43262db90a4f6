"""The event-loop pool's tuple rows (``AsyncPool.tuples``), text or binary, and the hot
profile read's column positions (``vault.profiles.reader``), computed once from its
statements' text: the values are the dict rows' values, in the statement's order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from vault.profiles import reader
from vault.profiles.reader import LIMITED_SQL, LOOKUP_SQL, PROFILE_SQL
from vault.storage.aio import AsyncPool
from vault.storage.counters import DatabaseCounters
from vault.storage.db import Database

KINDS = """SELECT %(id)s::uuid AS id, %(at)s::timestamptz AS at, '\\x00ff'::bytea AS ct,
  json_build_array('crm', 'x-1')::text AS pairs, true AS yes, false AS no,
  42::bigint AS big, 7 AS small, NULL::text AS nothing, 'Zoë'::text AS name"""
READ = {
    "purpose": "support", "granted": "granted", "scopes": ["support"], "payload": True,
    "n": 11, "now": datetime(2026, 1, 2, tzinfo=UTC),
}  # fmt: skip


def _postgresql(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("the event-loop pool is PostgreSQL's")


def test_tuples_hold_the_dict_rows_values_in_order_in_text_and_binary(
    database: Database,
) -> None:
    """One row of each kind the hot read decodes (uuid, timestamptz, bytea, json as text,
    booleans, integers, NULL, text): the tuples, text or binary, are the dict row's
    values in the statement's order, of the same types (the json text a ``str``, the
    timestamp in UTC, ``datetime.UTC`` itself: the pool's sessions are in UTC); one
    statement each."""
    _postgresql(database)
    params = {"id": uuid.uuid4(), "at": datetime(2026, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC)}

    async def run() -> tuple[
        list[dict[str, Any]], list[tuple[Any, ...]], list[tuple[Any, ...]], int
    ]:
        pool = AsyncPool(database.engine, size=1)
        await pool.open()
        try:
            named = await pool.rows(KINDS, params)
            text = await pool.tuples(KINDS, params)
            binary = await pool.tuples(KINDS, params, binary=True)
            return named, text, binary, pool.statements
        finally:
            await pool.close()

    named, text, binary, statements = asyncio.run(run())
    expected = (
        params["id"], params["at"], b"\x00\xff", '["crm", "x-1"]', True, False, 42, 7, None, "Zoë",
    )  # fmt: skip
    assert [tuple(named[0].values())] == [expected] == text == binary
    assert [type(v) for v in binary[0]] == [type(v) for v in text[0]] == [type(v) for v in expected]
    assert text[0][1].tzinfo is UTC
    assert binary[0][1].tzinfo is UTC
    assert statements == 3


def _columns(database: Database, sql: str, params: dict[str, Any]) -> tuple[str, ...]:
    with database.engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            return tuple(column.name for column in cursor.description)


def test_the_readers_positions_are_its_statements_columns(database: Database) -> None:
    """The positions the reader reads its tuples by are the columns its statements
    return, in order: the profile's, each lookup's, and each limited statement's after
    its ``rl_taken``."""
    _postgresql(database)
    by_id = {**READ, "id": uuid.uuid4()}
    by_index = {**READ, "bidx": 12345, "readable": ["active"]}
    hit = DatabaseCounters(database, clock=lambda: 6_000_000.0).pending_windows(
        [("burst", 30, 6), ("minute", 25, 60)]
    )
    statements = [(PROFILE_SQL, by_id), *((sql, by_index) for sql in LOOKUP_SQL.values())]
    limited = [(LIMITED_SQL[sql], {**p, **hit.params()}) for sql, p in statements]
    assert [_columns(database, sql, p) for sql, p in statements] == [reader._NAMES] * 3
    assert [_columns(database, sql, p) for sql, p in limited] == [("rl_taken", *reader._NAMES)] * 3
