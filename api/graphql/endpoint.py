"""/graphql: HTTP checks, authentication, purpose, rate limit, then execution.

The order of the gates: method and content type (405/415), body size (413), JSON
(400), bearer token (401 UNAUTHENTICATED), rate limit (429 RATE_LIMITED),
purpose (400 PURPOSE_REQUIRED; 400 UNKNOWN_PURPOSE for a purpose outside the
registry; 403 FORBIDDEN for one the role may not use), the trusted documents rule
(:mod:`api.graphql.trusted`: 400 TRUSTED_DOCUMENT_REQUIRED, 404
PERSISTED_QUERY_NOT_FOUND), document limits and validation (400). POST takes
``application/json`` only; GET runs queries only (405 for a mutation), named by
``documentId`` or Apollo's ``extensions``, or as text under ``allow``, and its answers
are never stored by caches (``Cache-Control: no-store``); GET without parameters from a
browser is GraphiQL in development. Execution runs in a worker thread inside one unit
of work for the caller, so its reads, writes and audit entries commit together. Input
errors name the input as the schema spells it (``firstName``, not ``first_name``).

A database that cannot be reached or written (down, restarting, disk full,
read-only) answers 503 SERVICE_UNAVAILABLE with no data, at whatever gate it
shows: the unit of work is rolled back whole, even when only one field of the
operation hit it, and a failed audit write fails its request.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import orjson
import structlog
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import StrawberryInputCoercionError

from api.auth import AuthError, Principal, TokenVerifier
from api.clients import ClientPseudonyms
from api.graphql.compiled import Plan, compile_plan
from api.graphql.context import Evidence, GraphQLContext
from api.graphql.hot import HotReads
from api.graphql.limits import Limits
from api.graphql.messages import input_message
from api.graphql.problems import Problem, error_response, safe_message
from api.graphql.ratelimit import Admission, Limiter, RateLimiter, admit, limit_wait
from api.graphql.ratelimit import pending_admission as pending
from api.graphql.routing import tolerates_lag
from api.graphql.trusted import (
    DocumentRequest,
    TrustedRegistry,
    prepare_document,
    refuse_mutation_over_get,
    validation_rules,
)
from api.pages.graphiql import graphiql_page
from audit.entries import AuditAction, Outcome
from consent import Privacy
from policies import AccessDenied, Role
from policies.purposes import registry
from vault import telemetry
from vault.authorization.context import AccessContext, Actor
from vault.config import TrustedDocuments
from vault.crypto import CryptoError
from vault.errors import InvalidInput, VaultError
from vault.logs import get_logger
from vault.runtime import Vault
from vault.storage.aio import AsyncPool
from vault.storage.db import storage_failure

__all__ = ["GraphQLEndpoint", "RateLimiter"]

log = get_logger("api.graphql")
_T = TypeVar("_T")
_PURPOSES = frozenset(p.value for p in registry())
_UNKNOWN_PURPOSE = f"X-Purpose names no registered purpose; one of: {', '.join(sorted(_PURPOSES))}"
_NO_STORE = {"Cache-Control": "no-store"}


class GraphQLEndpoint:
    def __init__(
        self,
        vault: Vault,
        schema: GraphQLSchema,
        verifier: TokenVerifier,
        *,
        limits: Limits | None = None,
        rate_limiter: Limiter | None = None,
        graphiql: bool = False,
        introspection: bool = True,
        max_body_bytes: int = 1_048_576,
        max_batch: int = 5,
        compiled: bool = True,
        threads: int = 16,
        trusted_documents: TrustedDocuments = TrustedDocuments.ALLOW,
    ) -> None:
        self.vault = vault
        self.privacy = Privacy.of(vault)
        self.schema = schema
        self.verifier = verifier
        self.limits = limits or Limits()
        self.rate_limiter: Limiter = rate_limiter or RateLimiter(600)
        self.graphiql = graphiql
        self.introspection = introspection
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch
        self._rules = validation_rules(introspection=introspection)
        self.trusted = TrustedRegistry(vault, trusted_documents, self._prepare)
        # Per query text: the parsed and validated document, and the compiled plan of
        # each of its operations (None: graphql-core executes it).
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()
        self._plans: dict[tuple[str, str | None], Plan | None] = {}
        self._documents_lock = threading.Lock()
        self.compiled = compiled
        # Compiled profile reads on the event loop (PostgreSQL; opened by the lifespan).
        self.hot = HotReads(vault, self.privacy)
        self._clients = ClientPseudonyms(vault.keyring.blind_indexer)
        # Operations run on these threads, one unit of work each; created on first use.
        self._threads = threads
        self._workers: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return "GraphQLEndpoint()"

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except Problem as problem:
            telemetry.refused(problem.code)  # the gateway's refusals (the domain's: authz)
            headers = problem.headers
            if request.method == "GET":
                headers = {**(headers or {}), **_NO_STORE}
            return error_response(problem.status, problem.code, problem.message, headers)
        except Exception as exc:  # noqa: BLE001 - every failure gets a JSON answer
            failure = storage_failure(exc)
            if failure is None:  # the class only: a driver's message can quote values
                log.error("request failed", error=type(exc).__name__)  # noqa: TRY400
                return error_response(500, "INTERNAL", "internal error")
            log.warning("database unavailable", reason=failure.reason)
            return error_response(503, failure.code, str(failure), {"Retry-After": "1"})

    async def _handle(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._get(request)
        if request.method != "POST":
            raise Problem(405, "METHOD_NOT_ALLOWED", "use POST", {"Allow": "POST"})
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise Problem(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
        body = await self._body(request)
        try:
            payload = orjson.loads(body)
        except ValueError:
            raise Problem(400, "BAD_REQUEST", "the body is not JSON") from None
        access, evidence, admission = await self._caller(request)
        if isinstance(payload, list):
            await admit(admission)
            if not payload or len(payload) > self.max_batch:
                raise Problem(400, "BATCH_LIMIT", f"send 1 to {self.max_batch} operations")
            requests = [DocumentRequest.from_body(op) for op in payload]
            results = [await self._operation(op, access, evidence) for op in requests]
            return _json(results)
        try:
            document = DocumentRequest.from_body(payload)
            return _json(await self._operation(document, access, evidence, admission=admission))
        except Problem:
            await admit(admission)  # 429 comes before the request's other refusals
            raise

    async def _get(self, request: Request) -> Response:
        """GET: GraphiQL for a browser (development), else a query named by its
        parameters; never a mutation, and never without the trusted documents feature."""
        named = {"query", "documentId", "extensions"} & set(request.query_params)
        if not named and self.graphiql and "text/html" in request.headers.get("accept", ""):
            return graphiql_page()
        if self.trusted.mode is TrustedDocuments.OFF or not named:
            raise Problem(405, "METHOD_NOT_ALLOWED", "use POST with application/json",
                          {"Allow": "POST"})  # fmt: skip
        document = DocumentRequest.from_params(request.query_params)
        access, evidence, admission = await self._caller(request)
        await admit(admission)
        body = await self._operation(document, access, evidence, get=True)
        return _json(body, _NO_STORE)

    async def _caller(self, request: Request) -> tuple[AccessContext, Evidence, Admission | None]:
        """Who asks (401, 429, 400/403 on the purpose), what the request says of the
        device (evidence for consent changes), and the caller's rate limit hit if pending
        (PostgreSQL's table): the hot read's statement carries it, else :func:`admit`."""
        principal = await self._authenticate(request)
        admission = await pending(self.rate_limiter, self._pool_open(), principal.subject)
        access = await self._access(request, principal, admission)
        evidence = Evidence(
            user_agent=request.headers.get("user-agent"),
            client_address=request.client.host if request.client else None,
        )
        return access, evidence, admission

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise Problem(413, "PAYLOAD_TOO_LARGE", "the request body is too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise Problem(413, "PAYLOAD_TOO_LARGE", "the request body is too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _pool_open(self) -> AsyncPool | None:
        return None if self.hot.reader is None else self.hot.reader.pool

    async def _authenticate(self, request: Request) -> Principal:
        try:
            return self.verifier.verify(request.headers.get("authorization"))
        except AuthError as exc:
            client = self._clients.of(request)
            if await limit_wait(self.rate_limiter, self._pool_open(), f"failed:{client}"):
                raise Problem(429, "RATE_LIMITED", "too many requests",
                               {"Retry-After": "60"}) from None  # fmt: skip
            anonymous = AccessContext(
                Actor(subject="anonymous", role="none"),
                purpose="none",
                request_id=_request_id(),
                client=client,
            )
            self.vault.audit.record_now(
                self.vault.db, anonymous, AuditAction.TOKEN_FAILURE, outcome=Outcome.DENIED
            )
            log.info("authentication failed", reason=getattr(exc, "reason", "invalid"))
            raise Problem(401, "UNAUTHENTICATED", "invalid or missing token",
                           {"WWW-Authenticate": "Bearer"}) from None  # fmt: skip

    async def _access(
        self, request: Request, principal: Principal, admission: Admission | None
    ) -> AccessContext:
        """The caller's access context; a refusal (counted by the rate limit first, which
        answers 429 before it) otherwise."""
        purpose = request.headers.get("x-purpose", "").strip()
        if not purpose:
            await admit(admission)
            raise Problem(400, "PURPOSE_REQUIRED", "name the purpose in the X-Purpose header")
        subject = principal.subject
        if principal.role is Role.DATA_SUBJECT:
            subject = f"customer:{principal.customer_id}"  # never an e-mail as the actor
        try:
            actor = Actor(subject=subject, role=principal.role.value,
                          customer_id=principal.customer_id)  # fmt: skip
        except ValueError:
            await admit(admission)
            raise Problem(401, "UNAUTHENTICATED", "invalid or missing token") from None
        access = AccessContext(
            actor, purpose=purpose if purpose in _PURPOSES else "unknown",
            request_id=_request_id(), client=self._clients.of(request),
        )  # fmt: skip
        known = purpose in _PURPOSES
        try:
            if known:
                self.vault.authz.enforcer.check_purpose(principal.role.value, access.purpose)
        except AccessDenied:
            allowed = False
        else:
            allowed = known
        if not allowed:
            await admit(admission)
            self.vault.audit.record_now(
                self.vault.db, access, AuditAction.ACCESS_DENIED,
                outcome=Outcome.DENIED, detail={"stage": "purpose"},
            )  # fmt: skip
            if not known:  # named, never echoed: the header's text may be anything
                raise Problem(400, "UNKNOWN_PURPOSE", _UNKNOWN_PURPOSE)
            raise Problem(403, "FORBIDDEN", "this purpose is not allowed for your role")
        return access

    def _prepare(self, text: str) -> DocumentNode:
        return prepare_document(
            text, self.schema, self._rules, self.limits, hide_suggestions=not self.introspection
        )

    def _document(self, query: str) -> DocumentNode:
        """Free text: prepared once, then kept while it is among the 1,024 last used."""
        with self._documents_lock:
            cached = self._documents.get(query)
            if cached is not None:
                self._documents.move_to_end(query)
                return cached
        document = self._prepare(query)
        with self._documents_lock:
            self._documents[query] = document
            while len(self._documents) > 1024:
                gone, _ = self._documents.popitem(last=False)
                for key in [k for k in self._plans if k[0] == gone]:
                    del self._plans[key]
        return document

    def _plan(
        self, query: str, document: DocumentNode, operation: OperationDefinitionNode
    ) -> Plan | None:
        if not self.compiled:
            return None
        key = (query, operation.name.value if operation.name else None)
        try:
            return self._plans[key]
        except KeyError:
            plan = compile_plan(self.schema, document, operation)
            with self._documents_lock:
                self._plans[key] = plan
            return plan

    async def _operation(
        self,
        request: DocumentRequest,
        access: AccessContext,
        evidence: Evidence,
        *,
        get: bool = False,
        admission: Admission | None = None,
    ) -> dict[str, Any]:
        """One operation's answer. ``admission``: the request's pending rate limit hit,
        counted before any work but what is cached (a known document, its plan), or by
        the hot read's statement; a Problem raised leaves it to the caller to count."""

        async def blocking(work: Callable[[], _T]) -> _T:
            await admit(admission)  # a refresh of the trusted documents
            return await self._blocking(work)

        resolved = await self.trusted.resolve(request, blocking)
        if resolved.document is None and resolved.text not in self._documents:
            await admit(admission)  # a parse
        document = resolved.document or self._document(resolved.text)
        operation = get_operation_ast(document, request.operation_name)
        if operation is None:
            raise Problem(400, "BAD_REQUEST", "name one operation of the document")
        if get:
            refuse_mutation_over_get(operation)
        plan = self._plan(resolved.text, document, operation)
        variables = request.variables
        if plan is not None and not tolerates_lag(operation):
            hit = admission.hit if admission is not None and admission.pending else None
            with structlog.contextvars.bound_contextvars(request_id=access.request_id):
                hot = await self.hot.answer(plan, variables, access, evidence, hit)
            if hot is not None:
                await admit(admission)  # counted by the read's statement (sweeps when due)
                return self._response(hot[0], hot[1], operation)
        await admit(admission)  # 429 if the read's statement refused it; else sent now
        work = partial(self._execute, document, operation, variables, access, evidence, plan=plan)
        return await self._blocking(work)

    async def _blocking(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` on an operation thread (in this request's context variables). A
        plain executor hop: anyio's to_thread cost as much as a database round trip."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), contextvars.copy_context().run, work)

    def _pool(self) -> ThreadPoolExecutor:
        pool = self._workers
        if pool is None:
            with self._documents_lock:
                if self._workers is None:
                    self._workers = ThreadPoolExecutor(
                        max_workers=self._threads, thread_name_prefix="cvault-graphql"
                    )
                pool = self._workers
        return pool

    async def start(self) -> None:
        """Load the trusted documents; open the event-loop pool of the hot profile reads."""
        await asyncio.to_thread(self.trusted.refresh)
        await self.hot.open()

    async def stop(self) -> None:
        """Let operations in flight finish, then close the threads and the pool."""
        await asyncio.to_thread(self.close)
        await self.hot.close()

    def close(self) -> None:
        """Stop the operation threads (after the server stopped taking requests)."""
        if self._workers is not None:
            self._workers.shutdown(wait=True)
            self._workers = None

    def _execute(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
        access: AccessContext,
        evidence: Evidence,
        *,
        plan: Plan | None = None,
    ) -> dict[str, Any]:
        with structlog.contextvars.bound_contextvars(request_id=access.request_id):
            if tolerates_lag(operation):
                unit = self.vault.read_unit
            elif operation.operation is OperationType.QUERY:
                unit = self.vault.query_unit  # audit group-committed, waited for
            else:
                unit = self.vault.unit
            with unit(access) as session:
                context = GraphQLContext(
                    vault=self.vault,
                    session=session,
                    access=access,
                    privacy=self.privacy,
                    evidence=evidence,
                )
                compiled = None if plan is None else plan.run(context, variables)
                result = compiled if compiled is not None else execute(
                    self.schema, document, variable_values=variables, context_value=context,
                    operation_name=operation.name.value if operation.name else None,
                )  # fmt: skip
                if isinstance(result, ExecutionResult):
                    _raise_storage_failure(result)  # rolls the whole unit back
                    return self._response(result, context, operation)
            raise RuntimeError("asynchronous execution is not used")  # pragma: no cover

    def _response(
        self, result: ExecutionResult, context: GraphQLContext, operation: OperationDefinitionNode
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [self._format(e) for e in result.errors]
        if context.redacted:
            body["extensions"] = {"redacted": sorted(set(context.redacted))}
        return body

    def _format(self, error: GraphQLError) -> dict[str, Any]:
        original = error.original_error
        if isinstance(original, AccessDenied):
            code, message = original.code, "access denied"
        elif isinstance(original, InvalidInput):
            code, message = original.code, input_message(original)
        elif isinstance(original, VaultError):
            code, message = original.code, str(original)
        elif error.path is None or isinstance(original, StrawberryInputCoercionError):
            # Raised before any resolver ran, or while Strawberry converted the arguments:
            # a variable or a literal that does not fit its type.
            code, message = "BAD_USER_INPUT", safe_message(error.message)
        elif isinstance(original, CryptoError):
            code, message = "INTERNAL", "internal error"
            log.error("crypto failure while resolving", path=error.path)
        else:
            code, message = "INTERNAL", "internal error"
            failure = type(original).__name__ if original is not None else "GraphQLError"
            log.error("resolver failed", path=error.path, error=failure)
        formatted: dict[str, Any] = {"message": message, "extensions": {"code": code}}
        if isinstance(original, VaultError):
            formatted["extensions"].update(original.extensions())
        if error.path:
            formatted["path"] = error.path
        if error.locations:
            formatted["locations"] = [
                {"line": loc.line, "column": loc.column} for loc in error.locations
            ]
        return formatted


def _raise_storage_failure(result: ExecutionResult) -> None:
    """Raise the first storage failure a resolver met: the operation fails whole (503)
    rather than answering a partial result beside a half-done unit of work."""
    for error in result.errors or ():
        if error.original_error is not None:
            failure = storage_failure(error.original_error)
            if failure is not None:
                raise failure


def _json(body: object, headers: dict[str, str] | None = None) -> Response:
    """A JSON response, rendered by orjson (a few times faster than the json module);
    the json module takes what orjson refuses (integers beyond 64 bits in a JSON value)."""
    try:
        content = orjson.dumps(body)
    except TypeError:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, media_type="application/json", headers=headers)


def _request_id() -> str:
    import uuid  # noqa: PLC0415

    bound = structlog.contextvars.get_contextvars().get("request_id")
    return str(bound) if bound else uuid.uuid4().hex
