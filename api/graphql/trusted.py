"""Trusted documents at the gateway: which document a request names, and whether this
server runs it (``CVAULT_TRUSTED_DOCUMENTS``: off, allow, require).

A request names its document by text (``query``), by ``documentId`` (``sha256:<hex>``,
the bare SHA-256, or the MD5/SHA-1 id a Relay or client preset manifest gave), or by
Apollo's ``extensions.persistedQuery.sha256Hash``; over POST as JSON, over GET as URL
parameters (``variables`` and ``extensions`` JSON-encoded). Under ``require`` only
registered documents run (by id, or by exactly their text): other text is refused with
400 TRUSTED_DOCUMENT_REQUIRED. An unknown id is 404 PERSISTED_QUERY_NOT_FOUND (message
``PersistedQueryNotFound``, which Apollo's link understands) under ``allow`` and
``require``; under ``off`` an id is 400 PERSISTED_QUERY_NOT_SUPPORTED.

Each process keeps the registered documents (text by SHA-256, aliases) and each one's
parsed and validated AST once it was first used: a registered document is never parsed
again. The cache reloads when the events table grew: on a miss (so a document registered
a moment ago by ``cvault documents register`` runs at once) and from the server's
background loop (so a revocation reaches every process within its period).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
    validate,
)
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from api.graphql.limits import LimitExceeded, Limits, check_document
from api.graphql.problems import Problem, safe_message
from vault.config import TrustedDocuments as Mode
from vault.documents import (
    DocumentFacts,
    InvalidDocument,
    document_sha256,
    id_matches,
    parse_document_id,
)
from vault.logs import get_logger
from vault.runtime import Vault

__all__ = [
    "DocumentRequest",
    "Resolved",
    "TrustedRegistry",
    "prepare_document",
    "refuse_mutation_over_get",
    "schema_checker",
    "validation_rules",
]

log = get_logger("api.graphql.trusted")
_T = TypeVar("_T")
_SEND = "send {query or documentId, variables?, operationName?}"
Blocking = Callable[[Callable[[], _T]], Awaitable[_T]]
# Templates: raise _fresh(...) of them (a raised instance keeps its traceback, and a
# template raised again would grow it with every request).
_NOT_FOUND = Problem(404, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound",
                     {"Cache-Control": "no-store"})  # fmt: skip
_REQUIRED = Problem(
    400, "TRUSTED_DOCUMENT_REQUIRED",
    "this server runs registered documents only: send its documentId (documents are "
    "registered with `cvault documents register`)",
)  # fmt: skip
_NOT_SUPPORTED = Problem(
    400, "PERSISTED_QUERY_NOT_SUPPORTED",
    "this server does not take document ids (CVAULT_TRUSTED_DOCUMENTS=off): send the query",
)  # fmt: skip
_MISMATCH = Problem(400, "PERSISTED_QUERY_HASH_MISMATCH",
                    "the document id is not the hash of the query sent with it")  # fmt: skip


def _fresh(problem: Problem) -> Problem:
    return dataclasses.replace(problem)


def validation_rules(*, introspection: bool) -> list[type[ASTValidationRule]]:
    """graphql-core's rules, and Strawberry's for @oneOf inputs and Maybe fields (an
    inline one-of literal with no member, two members or a null member is refused here,
    as the same value given as a variable is); without introspection, its refusal."""
    rules = [*specified_rules, OneOfInputValidationRule, MaybeNullValidationRule]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def prepare_document(
    text: str,
    schema: GraphQLSchema,
    rules: list[type[ASTValidationRule]],
    limits: Limits,
    *,
    hide_suggestions: bool,
) -> DocumentNode:
    """Parse, validate and check the limits of a document; a refusal is a 400 Problem
    whose message never quotes a value."""
    try:
        document = parse(text, max_tokens=limits.max_tokens)
    except GraphQLError as exc:
        raise Problem(400, "GRAPHQL_PARSE_FAILED", exc.message) from None
    errors = validate(schema, document, rules, hide_suggestions=hide_suggestions)
    if errors:
        raise Problem(400, "GRAPHQL_VALIDATION_FAILED", safe_message(errors[0].message))
    try:
        check_document(document, limits, schema)
    except LimitExceeded as exc:
        raise Problem(400, LimitExceeded.code, str(exc)) from None
    return document


def facts_of(document: DocumentNode) -> DocumentFacts:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    kinds = {o.operation.value for o in operations}
    kind = kinds.pop() if len(kinds) == 1 else "mixed"
    name = operations[0].name if len(operations) == 1 else None
    return DocumentFacts(kind, name.value if name is not None else None)


def schema_checker(
    schema: GraphQLSchema, limits: Limits | None = None
) -> Callable[[str], DocumentFacts]:
    """The checker ``cvault documents register`` hands the store: a document must parse,
    validate against ``schema`` and stay within the gateway's limits."""
    rules = validation_rules(introspection=True)
    chosen = limits or Limits()

    def check(body: str) -> DocumentFacts:
        try:
            document = prepare_document(body, schema, rules, chosen, hide_suggestions=True)
        except Problem as problem:
            raise InvalidDocument(f"{problem.code}: {problem.message}") from None
        if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
            raise InvalidDocument("the document holds no operation")
        return facts_of(document)

    return check


def refuse_mutation_over_get(operation: OperationDefinitionNode) -> None:
    """GET runs queries only (GraphQL over HTTP: 405 for a mutation; a subscription
    is not served over HTTP at all)."""
    if operation.operation is not OperationType.QUERY:
        message = "GET runs queries only; send mutations with POST"
        raise Problem(405, "METHOD_NOT_ALLOWED", message, {"Allow": "POST"})


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """One operation as a request names it (POST body or GET parameters)."""

    query: str | None
    document_id: str | None
    apollo_hash: str | None
    variables: dict[str, Any] | None
    operation_name: str | None

    @classmethod
    def from_body(cls, payload: object) -> DocumentRequest:
        if not isinstance(payload, dict):
            raise Problem(
                400, "BAD_REQUEST", "send {query or documentId, variables?, operationName?}"
            )
        return cls._checked(
            payload.get("query"), payload.get("documentId"), payload.get("extensions"),
            payload.get("variables"), payload.get("operationName"),
        )  # fmt: skip

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> DocumentRequest:
        """GET: ``query`` or ``documentId``, ``operationName``, and ``variables`` and
        ``extensions`` as JSON strings."""
        decoded: dict[str, object] = {}
        for name in ("variables", "extensions"):
            raw = params.get(name)
            if raw:
                try:
                    decoded[name] = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise Problem(400, "BAD_REQUEST", f"{name} must be JSON") from None
        return cls._checked(
            params.get("query") or None, params.get("documentId") or None,
            decoded.get("extensions"), decoded.get("variables"),
            params.get("operationName") or None,
        )  # fmt: skip

    @classmethod
    def _checked(
        cls, query: object, document_id: object, extensions: object, variables: object,
        name: object,
    ) -> DocumentRequest:  # fmt: skip
        if query is not None and not isinstance(query, str):
            raise Problem(400, "BAD_REQUEST", "query must be a string")
        if document_id is not None and not isinstance(document_id, str):
            raise Problem(400, "BAD_REQUEST", "documentId must be a string")
        if variables is not None and not isinstance(variables, dict):
            raise Problem(400, "BAD_REQUEST", "variables must be an object")
        if name is not None and not isinstance(name, str):
            raise Problem(400, "BAD_REQUEST", "operationName must be a string")
        if extensions is not None and not isinstance(extensions, dict):
            raise Problem(400, "BAD_REQUEST", "extensions must be an object")
        apollo = _apollo_hash((extensions or {}).get("persistedQuery"))
        if query is None and document_id is None and apollo is None:
            raise Problem(
                400, "BAD_REQUEST", "send {query or documentId, variables?, operationName?}"
            )
        return cls(query, document_id, apollo, variables, name)


def _apollo_hash(persisted: object) -> str | None:
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise Problem(400, "BAD_REQUEST", "extensions.persistedQuery: version 1 is supported")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or parse_document_id(sha) != ("sha256", sha.lower()):
        raise Problem(400, "BAD_REQUEST", "extensions.persistedQuery.sha256Hash: 64 hex digits")
    return sha.lower()


@dataclass(frozen=True, slots=True)
class Resolved:
    """The document to run: its text, and its prepared AST when it is registered (None:
    free text, prepared by the endpoint's own cache)."""

    text: str
    document: DocumentNode | None


@dataclass(slots=True)
class _Entry:
    body: str = field(repr=False)
    document: DocumentNode | None = None
    problem: Problem | None = None


class TrustedRegistry:
    """The registered documents one process serves, and the rule in force."""

    def __init__(self, vault: Vault, mode: Mode, prepare: Callable[[str], DocumentNode]) -> None:
        self.vault = vault
        self.mode = mode
        self._prepare = prepare
        self._mark = -1
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TrustedRegistry(mode={self.mode.value!r}, documents={len(self._entries)})"

    def refresh(self) -> bool:
        """Reload the registered documents if an event was added since the last load
        (blocking: run it off the event loop). Parsed ASTs of kept documents stay."""
        if self.mode is Mode.OFF:
            return False
        with self._lock:
            with self.vault.db.transaction() as session:
                mark = self.vault.documents.mark(session)
            if mark == self._mark:
                return False
            snapshot = self.vault.documents.snapshot(self.vault.db)
            kept = self._entries
            self._entries = {
                sha: kept[sha] if sha in kept else _Entry(body)
                for sha, body in snapshot.documents.items()
            }
            self._aliases = snapshot.aliases
            self._mark = snapshot.mark
        log.info("trusted documents loaded", documents=len(self._entries))
        return True

    def _entry(self, kind: str, digits: str) -> _Entry | None:
        sha = self._aliases.get(digits) if kind == "alias" else digits
        return None if sha is None else self._entries.get(sha)

    def _resolved(self, entry: _Entry) -> Resolved:
        if entry.document is None and entry.problem is None:
            try:
                entry.document = self._prepare(entry.body)
            except Problem as problem:  # e.g. introspection, refused in production
                entry.problem = _fresh(problem)
        if entry.problem is not None:
            raise _fresh(entry.problem)
        return Resolved(entry.body, entry.document)

    async def _lookup(self, kind: str, digits: str, blocking: Blocking[bool]) -> _Entry | None:
        entry = self._entry(kind, digits)
        if entry is None:
            # Looked up again even when this refresh found nothing new: a request that
            # missed at the same time may have loaded it first.
            await blocking(self.refresh)
            entry = self._entry(kind, digits)
        return entry

    async def resolve(self, request: DocumentRequest, blocking: Blocking[bool]) -> Resolved:
        """The document the request names, if the mode lets it run; else a Problem."""
        named = request.document_id or request.apollo_hash
        if request.document_id and request.apollo_hash:
            parsed = parse_document_id(request.document_id)
            if parsed is None or parsed[1] != request.apollo_hash:
                raise Problem(
                    400, "BAD_REQUEST", "documentId and persistedQuery name two documents"
                )
        if self.mode is Mode.OFF:
            if request.query is None or request.document_id is not None:
                raise _fresh(_NOT_SUPPORTED)
            return Resolved(request.query, None)  # Apollo's hash beside the text: ignored
        text = request.query
        if named is None:
            assert text is not None  # noqa: S101 - DocumentRequest holds one or the other
            if self.mode is Mode.ALLOW:
                return Resolved(text, None)
            entry = await self._lookup("sha256", document_sha256(text), blocking)
            if entry is None:
                raise _fresh(_REQUIRED)
            return self._resolved(entry)
        parsed = parse_document_id(named)
        if parsed is None:  # a custom id of someone else's: not one of ours
            raise _fresh(_NOT_FOUND)
        kind, digits = parsed
        if text is not None and not id_matches(text, kind, digits):
            raise _fresh(_MISMATCH)
        entry = await self._lookup(kind, digits, blocking)
        if entry is not None:
            return self._resolved(entry)
        if text is None:
            raise _fresh(_NOT_FOUND)
        if self.mode is Mode.REQUIRE:
            raise _fresh(_REQUIRED)
        return Resolved(text, None)  # allow: the text runs; an id sent with it registers nothing
