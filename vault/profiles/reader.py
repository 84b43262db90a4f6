"""The hot read of one profile and what the services would decide about it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Final, NamedTuple

from sqlalchemy import JSON

from audit.entries import AuditAction, AuditEntry
from policies import AccessDenied, Resolution, Role
from policies.attributes import AttributeRegistry
from policies.enforcer import PolicyEnforcer
from policies.purposes import DIRECT_MARKETING, purpose_info
from vault.audit_trail.log import AuditBuffer
from vault.authorization.authorizer import SYSTEM_ROLE
from vault.authorization.context import AccessContext
from vault.crypto import DataKey, DecryptionError
from vault.crypto.handles import Handles
from vault.customers.models import READABLE, Customer
from vault.customers.normalize import normalise_email, normalise_phone
from vault.customers.queries import pairs
from vault.customers.views import audited_fields, customer_view, needs_keys
from vault.errors import InvalidInput
from vault.interactions.models import Interaction
from vault.interactions.timeline import LIVE, TIMELINE, interaction_of
from vault.keys import DataKeys
from vault.keyset import keyset_page
from vault.pagination import Page, Window
from vault.storage.aio import AsyncPool
from vault.storage.counters import WINDOWS_CTES, WINDOWS_TAKEN, WindowsHit
from vault.storage.models import CustomerRow
from vault.types import ConsentState, CustomerStatus, PiiField

__all__ = ["LIMITED_SQL", "LOOKUP_SQL", "PROFILE_SQL", "HotProfile", "ProfileReader"]

_CUSTOMER_COLUMNS: Final = tuple(CustomerRow.__table__.c.keys())
_INTERACTION_COLUMNS: Final = (
    "id", "customer_id", "channel", "type", "occurred_at", "amount_minor", "currency",
    "external_id", "recorded_at",
)  # fmt: skip
_TIMES: Final = ("created_at", "updated_at", "erased_at")
# JSON columns come as text, parsed once from the first row (not on every joined row).
_JSON: Final = frozenset(c.name for c in CustomerRow.__table__.c if c.type._type_affinity is JSON)

# One statement, one round trip: the customer with its external ids, its stored data
# key, whether it consented to and objected to the purpose (``part`` 0), then its newest
# ``n`` interactions (``part`` 1, LATERAL), newest first, ties broken by id as the
# timeline breaks them. The customer's columns come once, in their own row (the
# interactions' rows carry NULLs there, and the customer's row NULLs in theirs: a UNION
# takes each NULL's type from the other branch), not repeated on every interaction row.
_HEAD_SELECT: Final = f"""SELECT 0 AS part,
  {", ".join(f"c.{n}::text AS {n}" if n in _JSON else f"c.{n}" for n in _CUSTOMER_COLUMNS)},
  (SELECT json_agg(json_build_array(e.source, e.external_id)) FROM customer_external_ids e
    WHERE e.customer_id = c.id)::text AS external_id_pairs,
  k.key_id AS k_key_id, k.kek_version AS k_kek_version, k.wrapped_key AS k_wrapped_key,
  EXISTS (SELECT 1 FROM consent_state s WHERE s.customer_id = c.id
    AND s.purpose = %(purpose)s AND s.state = %(granted)s
    AND (s.expires_at IS NULL OR s.expires_at > %(now)s)) AS consented,
  EXISTS (SELECT 1 FROM objections o WHERE o.customer_id = c.id
    AND o.scope = ANY(%(scopes)s::text[])) AS objected
FROM customers c
LEFT JOIN data_keys k ON k.customer_id = c.id
"""  # noqa: S608 - the names come from the table metadata; every value is bound
# The head's columns after the customer's own, as _HEAD_SELECT names them.
_HEAD_EXTRA: Final = (
    "external_id_pairs", "k_key_id", "k_kek_version", "k_wrapped_key", "consented", "objected",
)  # fmt: skip
_HEAD_WIDTH: Final = len(_CUSTOMER_COLUMNS) + len(_HEAD_EXTRA)  # after ``part``
_INTERACTION_NAMES: Final = (*_INTERACTION_COLUMNS, "payload_ct", "has_payload")
_BODY: Final = f"""SELECT h.*, {", ".join(f"NULL AS i_{n}" for n in _INTERACTION_NAMES)} FROM h
UNION ALL
SELECT 1, {", ".join("NULL" for _ in range(_HEAD_WIDTH))},
  {", ".join(f"i.{n}" for n in _INTERACTION_NAMES)}
FROM h CROSS JOIN LATERAL (
  SELECT {", ".join(f"t.{n}" for n in _INTERACTION_COLUMNS)},
    CASE WHEN %(payload)s THEN t.payload_ct END AS payload_ct,
    t.payload_ct IS NOT NULL AS has_payload
  FROM interactions t WHERE t.customer_id = h.id
  ORDER BY t.occurred_at DESC, t.id DESC LIMIT %(n)s) i
"""  # noqa: S608 - fixed text and metadata names only
_ORDER: Final = "ORDER BY part, i_occurred_at DESC, i_id DESC\n"
_BY_ID: Final = "WHERE c.id = %(id)s"
# The same statement keyed by a blind index: every readable customer sharing it (the
# index is short: candidates, re-checked on the decrypted value), a head row per
# customer; more than one customer is the ordinary path's to sort out.
_BY_INDEX: Final = {
    field: f"WHERE c.{field.value}_bidx = %(bidx)s AND c.status = ANY(%(readable)s::text[])"
    for field in (PiiField.EMAIL, PiiField.PHONE)
}


def _statement(where: str) -> str:
    return f"WITH h AS MATERIALIZED (\n{_HEAD_SELECT}{where})\n{_BODY}{_ORDER}"


PROFILE_SQL: Final = _statement(_BY_ID)
LOOKUP_SQL: Final = {f: _statement(where) for f, where in _BY_INDEX.items()}


def _limited(where: str) -> str:
    """The statement that also hits the caller's rate limit first (two windows, as
    ``vault.storage.counters`` hits them: ``WINDOWS_CTES``): one row of ``rl_taken``
    (2: allowed) joined to the profile's rows, read only when the caller was allowed."""
    return (
        f"WITH {WINDOWS_CTES},\nrl AS (SELECT {WINDOWS_TAKEN} AS taken),\n"  # noqa: S608
        f"h AS MATERIALIZED (\n{_HEAD_SELECT}{where} AND (SELECT taken FROM rl) = 2)\n"
        f"SELECT rl.taken AS rl_taken, p.* FROM rl LEFT JOIN (\n{_BODY}) p ON true\n"
        "ORDER BY p.part, p.i_occurred_at DESC, p.i_id DESC\n"
    )


# Each statement with the caller's rate limit hit in it (the request's first statement).
LIMITED_SQL: Final = {
    PROFILE_SQL: _limited(_BY_ID),
    **{LOOKUP_SQL[field]: _limited(where) for field, where in _BY_INDEX.items()},
}

# The rows come as tuples (no dict per row): each column's position, computed once from
# the statements' text above (a limited statement's rows, without their ``rl_taken``,
# are the same).
_NAMES: Final = ("part", *_CUSTOMER_COLUMNS, *_HEAD_EXTRA, *(f"i_{n}" for n in _INTERACTION_NAMES))
_AT: Final = {name: at for at, name in enumerate(_NAMES)}
_PART, _ID, _STATUS, _MERGED = _AT["part"], _AT["id"], _AT["status"], _AT["merged_into_id"]
_PAIRS, _CONSENTED, _OBJECTED = _AT["external_id_pairs"], _AT["consented"], _AT["objected"]
_KEY: Final = (_AT["k_key_id"], _AT["k_kek_version"], _AT["k_wrapped_key"])
_CT: Final = {f: _AT[f"{f.value}_ct"] for f in _BY_INDEX}
_CUSTOMER: Final = slice(_AT[_CUSTOMER_COLUMNS[0]], _AT[_CUSTOMER_COLUMNS[-1]] + 1)
_I_ID: Final = _AT["i_id"]  # the first of an interaction's columns


@dataclass(frozen=True, slots=True)
class HotProfile:
    """What the services would have answered, and the audit entries of the read."""

    customer: Customer
    timeline: Page[Interaction] | None
    entries: list[AuditEntry]


class _Found(NamedTuple):
    """An interaction's row, as :func:`interaction_of` reads it (``i_`` columns)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    type: str
    occurred_at: datetime
    amount_minor: int | None
    currency: str | None
    external_id: str | None
    recorded_at: datetime
    payload_ct: bytes | None
    has_payload: bool


def _utc(value: datetime | None) -> datetime | None:
    # A no-op (the same object) when the session's zone is UTC, as the pool sets it.
    return None if value is None else value.astimezone(UTC)


_Row = tuple[Any, ...]


POOL_WAIT = 2.0  # seconds a read waits for a connection before the 503 (an outage)


class ProfileReader:
    """Reads a profile in one statement and decides about it as the services do."""

    # The statement's results in PostgreSQL's binary format (False: text); the same
    # values either way (bench/hot_rows.py measures both).
    binary = True

    def __init__(  # noqa: PLR0917 - the pieces the services share
        self,
        pool: AsyncPool,
        keys: DataKeys,
        enforcer: PolicyEnforcer,
        attributes: AttributeRegistry,
        handles: Handles,
        clock: Callable[[], datetime],
        *,
        region: str | None = None,
    ) -> None:
        self.pool = pool
        self._region = region  # the phone numbers' default region, as the service's
        self._bidx = keys.keyring.blind_indexer
        self._keys = keys
        self._enforcer = enforcer
        self._attributes = attributes
        self._handles = handles
        self._clock = clock

    def __repr__(self) -> str:
        return "ProfileReader()"

    def reads(self, access: AccessContext) -> Mapping[str, str] | None:
        """The caller's resolutions, or None when the ordinary path must refuse (audited)."""
        if access.actor.role == SYSTEM_ROLE:
            return None
        try:
            return self._enforcer.resolve_all(access.actor.role, access.purpose)
        except AccessDenied:
            return None

    async def read(
        self,
        access: AccessContext,
        customer_id: uuid.UUID,
        first: int | None,
        hit: WindowsHit | None = None,
    ) -> HotProfile | None:
        """The profile (with its first ``first`` interactions unless None), or None when
        the ordinary path must answer. Nothing is written either way, but ``hit`` (the
        caller's rate limit, if still pending) when the statement runs: it carries the
        hit and records what it counted (a refused caller reads nothing: None)."""
        return await self._read(access, first, PROFILE_SQL, {"id": customer_id}, None, hit)

    async def lookup(
        self,
        access: AccessContext,
        field: PiiField,
        value: str,
        first: int | None,
        hit: WindowsHit | None = None,
    ) -> HotProfile | None:
        """``customerByEmail`` / ``customerByPhone``: the one live customer whose email or
        phone equals ``value`` (decrypted and re-compared: blind indexes are short), as
        :meth:`read` answers it, its lookup audited as the service audits it. None (nothing
        written but ``hit``) for anything else: no match, several, a collision, an invalid
        value."""
        if access.actor.role == Role.DATA_SUBJECT.value:
            return None  # refused (and audited) by the ordinary path: not a listing caller
        try:
            if field is PiiField.EMAIL:
                wanted = normalise_email(value)
            else:
                wanted = normalise_phone(value, region=self._region)
        except InvalidInput:
            return None
        params = {"bidx": self._bidx.index(field, wanted), "readable": list(READABLE)}
        return await self._read(access, first, LOOKUP_SQL[field], params, (field, wanted), hit)

    async def _read(  # noqa: PLR0911, PLR0917 - each way out is a case the ordinary path decides
        self,
        access: AccessContext,
        first: int | None,
        sql: str,
        keyed: dict[str, Any],
        lookup: tuple[PiiField, str] | None,
        hit: WindowsHit | None,
    ) -> HotProfile | None:
        reads = self.reads(access)
        if reads is None:
            return None
        size = 0
        if first is not None:
            try:
                size = Window.of(first=first).size
            except InvalidInput:
                return None
        info = purpose_info(access.purpose)
        scopes = [info.name.value] if info.objectable else []
        if info.direct_marketing:
            scopes.append(DIRECT_MARKETING)
        with_payload = reads.get("interaction_payload") == Resolution.CLEAR
        params = {
            **keyed, "purpose": info.name.value, "now": self._clock(),
            "granted": ConsentState.GRANTED.value, "scopes": scopes,
            "payload": with_payload, "n": size + 1 if first is not None else 0,
        }  # fmt: skip
        rows = await self._rows(sql, params, hit)
        if not rows:
            return None  # not found: the ordinary path raises it (or answers null)
        head = rows[0]
        if lookup is not None and len(rows) > 1 and rows[1][_PART] == 0:
            return None  # several candidates: the ordinary path filters, counts, decides
        status = head[_STATUS]
        if head[_MERGED] is not None or status not in READABLE or status not in LIVE:
            return None  # merges are followed, tombstones answered, by the ordinary path
        if access.actor.role == "data_subject" and access.actor.customer_id != head[_ID]:
            return None
        refused = (
            (not info.during_restriction and status == CustomerStatus.RESTRICTED.value)
            or (bool(scopes) and head[_OBJECTED])
            or (info.needs_consent and not head[_CONSENTED])
        )
        if refused or self._keys.keyring.shredded([head[_ID]]):
            return None
        buffer = AuditBuffer(access, self._clock)
        key = self._key(head) if needs_keys(reads) or lookup is not None else None
        if key is None and (needs_keys(reads) or lookup is not None):
            return None
        if lookup is not None:
            field, wanted = lookup
            if not self._matches(head, key, field, wanted):
                return None
            buffer.add(
                AuditAction.CUSTOMER_LOOKUP,
                fields={field.value: "searched"},
                detail={"by": field.value, "matches": 1},
            )
            key = key if needs_keys(reads) else None  # as the service: no key, no clear value
        return self._decide(buffer, reads, head, rows, key, first, size, with_payload)

    async def _rows(self, sql: str, params: dict[str, Any], hit: WindowsHit | None) -> list[_Row]:
        """The statement's rows (tuples, ``_NAMES``); with the rate limit ``hit`` in it if
        still pending (no row when the caller was refused: nothing was read, the
        endpoint answers 429)."""
        pool = self.pool
        if hit is None or hit.taken is not None:
            return await pool.tuples(sql, params, wait=POOL_WAIT, binary=self.binary)
        limited = {**params, **hit.params()}
        rows = await pool.tuples(LIMITED_SQL[sql], limited, wait=POOL_WAIT, binary=self.binary)
        taken = int(rows[0][0])  # rl_taken
        hit.record(taken)
        if taken != 2:  # both windows: allowed
            return []
        return [r[1:] for r in rows if r[1] is not None]  # part: None without a profile

    def _matches(self, head: _Row, key: DataKey | None, field: PiiField, wanted: str) -> bool:
        """Whether the candidate's decrypted ``field`` is the wanted value, as the service
        compares it; False (the ordinary path then answers) for anything unexpected."""
        token = head[_CT[field]]
        if key is None or token is None:
            return False
        try:
            found = key.decrypt_text(token, field=field)
            if field is PiiField.EMAIL:
                found = normalise_email(found)
        except (DecryptionError, InvalidInput):
            return False
        return found == wanted

    def _key(self, head: _Row) -> DataKey | None:
        stored = (head[_KEY[0]], head[_KEY[1]], head[_KEY[2]])
        return self._keys.hot(head[_ID], stored)

    def _decide(  # noqa: PLR0917 - one read's facts
        self,
        buffer: AuditBuffer,
        reads: Mapping[str, str],
        head: _Row,
        rows: list[_Row],
        key: DataKey | None,
        first: int | None,
        size: int,
        with_payload: bool,
    ) -> HotProfile | None:
        columns = dict(zip(_CUSTOMER_COLUMNS, head[_CUSTOMER], strict=True))
        for name in _TIMES:
            columns[name] = _utc(columns[name])
        for name in _JSON:
            text = columns[name]
            columns[name] = None if text is None else json.loads(text)
        customer = customer_view(
            SimpleNamespace(**columns), key, pairs(head[_PAIRS]),  # type: ignore[arg-type]
            reads=reads, attributes=self._attributes,
        )  # fmt: skip
        buffer.read(customer.id, audited_fields(customer))
        page = None
        if first is not None:
            if reads.get("interactions") == Resolution.HIDDEN:
                return None  # refused and audited by the ordinary path
            found = [_interaction(r) for r in rows if r[_I_ID] is not None]
            shown, more = found[:size], len(found) > size
            if with_payload and any(r.payload_ct for r in shown) and key is None:
                key = self._key(head)
                if key is None:
                    return None
            page = keyset_page(
                [interaction_of(r, key, hidden=not with_payload) for r in shown],
                [(r.occurred_at, r.id) for r in shown],
                listing=TIMELINE, handles=self._handles,
                has_next_page=more, has_previous_page=False,
            )  # fmt: skip
            buffer.read(
                customer.id,
                {
                    "interactions": "clear",
                    "interaction_payload": "clear" if with_payload else "hidden",
                },
            )
        return HotProfile(customer, page, buffer.drain())


def _interaction(row: _Row) -> _Found:
    """An interaction's row (part 1) as :func:`interaction_of` reads it."""
    (id_, customer_id, channel, kind, occurred, amount, currency, external_id, recorded,
     payload_ct, has_payload) = row[_I_ID:]  # fmt: skip
    return _Found(
        id_, customer_id, channel, kind, occurred.astimezone(UTC), amount, currency,
        external_id, recorded.astimezone(UTC), payload_ct, has_payload,
    )  # fmt: skip
