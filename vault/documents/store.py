"""The trusted documents: register a manifest whole or not at all, revoke, list, show.

Registration takes a checker from the edge (the GraphQL schema is not the vault's to
know): it validates each document and says what operations it holds. Any bad entry (an
id that is not its document's hash, a document the schema refuses, an id already naming
another document) refuses the whole manifest with every problem named; nothing is
stored. Re-registering a document already trusted changes nothing, so a deploy pipeline
can register its manifest on every run. Each registration and revocation is one audit
entry (counts, the manifest's digest, the revoked document's hash) and one event row per
document saying who did it and when. Administrators only (the operator's commands run
as the system).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies import AccessDenied, Action, Role
from vault.authorization.authorizer import SYSTEM_ROLE, Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.documents.manifest import Manifest, ManifestError, parse_document_id
from vault.errors import VaultError
from vault.storage.db import Database
from vault.storage.models import TrustedDocumentEventRow, TrustedDocumentRow
from vault.storage.notify import Change, announce

__all__ = [
    "DocumentChecker",
    "DocumentFacts",
    "DocumentNotTrusted",
    "InvalidDocument",
    "Registration",
    "TrustedDocument",
    "TrustedDocumentStore",
    "TrustedSnapshot",
]

_ADMINS = frozenset({SYSTEM_ROLE, Role.ADMIN.value})
_CHUNK = 500
REGISTERED, REVOKED = "registered", "revoked"


class InvalidDocument(Exception):
    """The checker refuses a document; ``reason`` names the rule, never a value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DocumentNotTrusted(VaultError):
    """No trusted document has this id (never registered, or revoked)."""

    code = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    """What a checked document holds: ``query``, ``mutation``, ``subscription`` or
    ``mixed``, and the name of its only operation."""

    operation_type: str
    operation_name: str | None


# The edge's check of one document's text: its facts, or InvalidDocument.
DocumentChecker = Callable[[str], DocumentFacts]


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registration did: documents newly trusted, already trusted, the format."""

    format: str
    manifest: str
    registered: list[str]
    unchanged: list[str]


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    """A stored document and its state; ``aliases`` are the MD5/SHA-1 ids clients send."""

    sha256: str
    operation_type: str
    operation_name: str | None
    active: bool
    registered_at: datetime
    registered_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    aliases: tuple[str, ...]
    body: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TrustedSnapshot:
    """The trusted documents as one process serves them: ``documents`` maps each active
    SHA-256 to its text, ``aliases`` an MD5/SHA-1 id to its SHA-256; ``mark`` changes
    whenever an event is added (the tables are append-only, so the count is enough)."""

    mark: int
    documents: dict[str, str]
    aliases: dict[str, str]


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class TrustedDocumentStore:
    def __init__(self, authz: Authorizer, clock: Callable[[], datetime]) -> None:
        self._authz = authz
        self._clock = clock

    def __repr__(self) -> str:
        return "TrustedDocumentStore()"

    # -- writes ------------------------------------------------------------------------

    def register(
        self, session: Session, manifest: Manifest, check: DocumentChecker
    ) -> Registration:
        """Trust every document of ``manifest``, or none: each is checked by ``check``,
        and an MD5/SHA-1 id may not name two different documents."""
        self._require_admin(session)
        problems: list[str] = []
        facts: dict[str, DocumentFacts] = {}
        for entry in manifest.entries:
            try:
                found = facts.get(entry.sha256) or check(entry.body)
            except InvalidDocument as exc:
                problems.append(f"entry {entry.label}: {exc.reason}")
                continue
            if entry.kind is not None and entry.kind != found.operation_type:
                problems.append(
                    f"entry {entry.label}: its type says {entry.kind}, the document holds "
                    f"a {found.operation_type}"
                )
                continue
            facts[entry.sha256] = found
        problems += self._alias_conflicts(session, manifest)
        if problems:
            raise ManifestError(problems)
        hashes = list(facts)
        stored = self._stored(session, hashes)
        state = self._states(session, hashes)
        now, actor = self._clock(), access_of(session).actor.subject
        registered: list[str] = []
        unchanged: list[str] = []
        added: set[tuple[str, str | None]] = set()
        for entry in manifest.entries:
            if entry.sha256 not in stored:
                found = facts[entry.sha256]
                session.add(
                    TrustedDocumentRow(
                        sha256=entry.sha256, body=entry.body,
                        operation_type=found.operation_type,
                        operation_name=found.operation_name, created_at=now,
                    )
                )  # fmt: skip
                stored.add(entry.sha256)
        session.flush()  # the documents before the events that name them
        for entry in manifest.entries:
            active, aliases = state.get(entry.sha256, (False, set()))
            key = (entry.sha256, entry.alias)
            if key in added or (active and (entry.alias is None or entry.alias in aliases)):
                if entry.sha256 not in registered and entry.sha256 not in unchanged:
                    unchanged.append(entry.sha256)
                continue
            added.add(key)
            session.add(
                TrustedDocumentEventRow(
                    sha256=entry.sha256, action=REGISTERED, client_id=entry.alias,
                    manifest=manifest.digest, actor=actor, at=now,
                )
            )  # fmt: skip
            if entry.sha256 in unchanged:
                unchanged.remove(entry.sha256)
            if entry.sha256 not in registered:
                registered.append(entry.sha256)
        session.flush()
        if registered:
            announce(session, Change.documents())  # servers reload on commit
        buffer_of(session).add(
            AuditAction.DOCUMENTS_CHANGE,
            detail={
                "step": "register",
                "format": manifest.format,
                "manifest": manifest.digest,
                "registered": len(registered),
                "unchanged": len(unchanged),
            },
        )
        return Registration(manifest.format, manifest.digest, registered, unchanged)

    def revoke(self, session: Session, given: str) -> TrustedDocument:
        """Stop trusting a document (by ``sha256:<hex>``, its hex SHA-256 or an alias)."""
        self._require_admin(session)
        document = self._find(session, given)
        if not document.active:
            raise DocumentNotTrusted("this document is already revoked")
        session.add(
            TrustedDocumentEventRow(
                sha256=document.sha256, action=REVOKED, client_id=None, manifest=None,
                actor=access_of(session).actor.subject, at=self._clock(),
            )
        )  # fmt: skip
        session.flush()
        announce(session, Change.documents())  # servers stop serving it on commit
        buffer_of(session).add(
            AuditAction.DOCUMENTS_CHANGE,
            detail={"step": "revoke", "document": document.sha256},
        )
        return self._find(session, document.sha256)

    # -- reads -------------------------------------------------------------------------

    def listing(self, session: Session, *, revoked: bool = False) -> list[TrustedDocument]:
        """Trusted documents (with ``revoked``, the revoked ones too), newest first."""
        self._require_admin(session)
        rows = session.scalars(select(TrustedDocumentRow)).all()
        documents = self._described(session, rows)
        shown = [d for d in documents if d.active or revoked]
        return sorted(shown, key=lambda d: (d.registered_at, d.sha256), reverse=True)

    def show(self, session: Session, given: str) -> TrustedDocument:
        """One stored document, active or revoked, with its text."""
        self._require_admin(session)
        return self._find(session, given)

    def snapshot(self, db: Database) -> TrustedSnapshot:
        """Every trusted document's text and alias, read in a transaction of its own (the
        endpoint's cache; not a caller's request, so no access check)."""
        with db.transaction() as session:
            mark = self.mark(session)
            events = session.execute(
                select(
                    TrustedDocumentEventRow.sha256,
                    TrustedDocumentEventRow.action,
                    TrustedDocumentEventRow.client_id,
                ).order_by(TrustedDocumentEventRow.id)
            ).all()
            active, aliases = _fold(events)
            documents: dict[str, str] = {}
            for chunk in _chunks(sorted(active)):
                rows = session.execute(
                    select(TrustedDocumentRow.sha256, TrustedDocumentRow.body).where(
                        TrustedDocumentRow.sha256.in_(chunk)
                    )
                ).all()
                documents.update({r.sha256: r.body for r in rows})
        served = {alias: sha for alias, sha in aliases.items() if sha in documents}
        return TrustedSnapshot(mark, documents, served)

    def mark(self, session: Session) -> int:
        """A number that grows with every event: a cache compares it to reload."""
        return int(session.scalar(select(func.count()).select_from(TrustedDocumentEventRow)) or 0)

    # -- helpers -----------------------------------------------------------------------

    def _find(self, session: Session, given: str) -> TrustedDocument:
        parsed = parse_document_id(given.strip())
        if parsed is None:
            raise DocumentNotTrusted(
                "a document id is sha256:<64 hex digits>, or the hex MD5, SHA-1 or SHA-256 "
                "a manifest gave"
            )
        kind, digits = parsed
        sha256 = digits
        if kind == "alias":
            found = session.scalar(
                select(TrustedDocumentEventRow.sha256)
                .where(TrustedDocumentEventRow.client_id == digits)
                .limit(1)
            )
            if found is None:
                raise DocumentNotTrusted("no stored document has this id")
            sha256 = found
        row = session.get(TrustedDocumentRow, sha256)
        if row is None:
            raise DocumentNotTrusted("no stored document has this id")
        return self._described(session, [row])[0]

    def _described(
        self, session: Session, rows: Sequence[TrustedDocumentRow]
    ) -> list[TrustedDocument]:
        by_hash: dict[str, list[TrustedDocumentEventRow]] = {r.sha256: [] for r in rows}
        for chunk in _chunks(list(by_hash)):
            for event in session.scalars(
                select(TrustedDocumentEventRow)
                .where(TrustedDocumentEventRow.sha256.in_(chunk))
                .order_by(TrustedDocumentEventRow.id)
            ):
                by_hash[event.sha256].append(event)
        described = []
        for row in rows:
            events = by_hash[row.sha256]
            registrations = [e for e in events if e.action == REGISTERED]
            revocations = [e for e in events if e.action == REVOKED]
            last_revoked = revocations[-1] if revocations else None
            active = bool(events) and events[-1].action == REGISTERED
            current = [
                e for e in registrations if last_revoked is None or e.id > last_revoked.id
            ] or registrations
            described.append(
                TrustedDocument(
                    sha256=row.sha256,
                    operation_type=row.operation_type,
                    operation_name=row.operation_name,
                    active=active,
                    registered_at=current[0].at,
                    registered_by=current[0].actor,
                    revoked_at=None if active or last_revoked is None else last_revoked.at,
                    revoked_by=None if active or last_revoked is None else last_revoked.actor,
                    aliases=tuple(sorted({e.client_id for e in registrations if e.client_id})),
                    body=row.body,
                )
            )
        return described

    def _stored(self, session: Session, hashes: Sequence[str]) -> set[str]:
        stored: set[str] = set()
        for chunk in _chunks(hashes):
            stored.update(
                session.scalars(
                    select(TrustedDocumentRow.sha256).where(TrustedDocumentRow.sha256.in_(chunk))
                )
            )
        return stored

    def _states(self, session: Session, hashes: Sequence[str]) -> dict[str, tuple[bool, set[str]]]:
        """Per document: whether it is trusted now, and the aliases registered since its
        last revocation."""
        rows: list[tuple[str, str, str | None]] = []
        for chunk in _chunks(hashes):
            rows += [
                (r.sha256, r.action, r.client_id)
                for r in session.execute(
                    select(
                        TrustedDocumentEventRow.sha256,
                        TrustedDocumentEventRow.action,
                        TrustedDocumentEventRow.client_id,
                    )
                    .where(TrustedDocumentEventRow.sha256.in_(chunk))
                    .order_by(TrustedDocumentEventRow.id)
                )
            ]
        state: dict[str, tuple[bool, set[str]]] = {}
        for sha256, action, alias in rows:
            if action == REVOKED:
                state[sha256] = (False, set())
            else:
                aliases = state.get(sha256, (True, set()))[1]
                state[sha256] = (True, aliases | ({alias} if alias else set()))
        return state

    def _alias_conflicts(self, session: Session, manifest: Manifest) -> list[str]:
        """Problems for MD5/SHA-1 ids that would name two different documents."""
        wanted: dict[str, str] = {}
        problems: list[str] = []
        for entry in manifest.entries:
            if entry.alias is None:
                continue
            if wanted.setdefault(entry.alias, entry.sha256) != entry.sha256:
                problems.append(f"entry {entry.label}: this id names two documents")
        for chunk in _chunks(sorted(wanted)):
            for alias, sha256 in session.execute(
                select(TrustedDocumentEventRow.client_id, TrustedDocumentEventRow.sha256)
                .where(TrustedDocumentEventRow.client_id.in_(chunk))
                .distinct()
            ):
                if alias is not None and sha256 != wanted[alias]:
                    label = next(e.label for e in manifest.entries if e.alias == alias)
                    problems.append(f"entry {label}: this id already names another stored document")
        return problems

    def _require_admin(self, session: Session) -> None:
        ctx = access_of(session)
        if ctx.actor.role not in _ADMINS or (
            ctx.actor.role == Role.ADMIN.value and ctx.purpose != "administration"
        ):
            error = AccessDenied(ctx.actor.role, ctx.purpose, "documents", Action.WRITE)
            raise self._authz.denied(session, error)


def _fold(events: Iterable[tuple[str, str, str | None]]) -> tuple[set[str], dict[str, str]]:
    """Active documents and their aliases from the events in order."""
    active: set[str] = set()
    aliases: dict[str, str] = {}
    for sha256, action, alias in events:
        if action == REVOKED:
            active.discard(sha256)
        else:
            active.add(sha256)
            if alias:
                aliases[alias] = sha256
    return active, aliases
