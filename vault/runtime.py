"""Wires settings into a running vault: database, keyring and services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from limits.storage import Storage
from sqlalchemy.orm import Session

from audit.checkpoint import Signer
from audit.entries import AuditAction, AuditEntry
from policies import PolicyEnforcer
from vault import faults, telemetry
from vault.alerts import AccessAlerts, Thresholds
from vault.alerts.delivery import AlertDelivery
from vault.attributes import attributes_path, load_attributes
from vault.audit_trail.log import AuditBuffer, AuditLog
from vault.audit_trail.queries import AuditQueries
from vault.audit_trail.writer import AuditWriter
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import AccessContext, bind
from vault.authorization.policy_store import PolicyStore
from vault.config import Settings
from vault.crypto import Keyring
from vault.crypto.handles import Handles
from vault.crypto.pages import PageSecrets
from vault.crypto.signing import load_signer
from vault.crypto.webhooks import WebhookSecrets
from vault.customers import CustomerService
from vault.documents import TrustedDocumentStore
from vault.errors import LegalHoldActive
from vault.interactions import InteractionService
from vault.keys import DataKeys
from vault.privacy.erasure import ErasureService, Forgetter
from vault.privacy.processing import ProcessingGate
from vault.privacy.retention import RetentionService
from vault.segments.service import SegmentService
from vault.segments.webhooks import WebhookDispatcher, WebhookService
from vault.sign_in import PageSessions, SignInCodes, SignInLimits
from vault.storage.counters import shared_limits_storage
from vault.storage.db import Database, open_database

__all__ = ["ReapplyReport", "RotationReport", "Vault"]


@dataclass(frozen=True, slots=True)
class RotationReport:
    new_version: int | None
    rewrapped: int
    retired: list[int]


@dataclass(frozen=True, slots=True)
class ReapplyReport:
    """What re-applying erasures after a restore did: ids and counts only."""

    erased: list[uuid.UUID]
    held: list[uuid.UUID]  # a legal hold in the restored database refused the erasure
    purged: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Vault:
    """Everything a request or a command needs, built once per process."""

    settings: Settings
    db: Database
    keyring: Keyring
    keys: DataKeys
    customers: CustomerService
    interactions: InteractionService
    audit: AuditLog
    authz: Authorizer
    trail: AuditQueries
    policies: PolicyStore
    gate: ProcessingGate
    retention: RetentionService
    erasure: ErasureService
    segments: SegmentService
    webhooks: WebhookService
    dispatcher: WebhookDispatcher
    page_secrets: PageSecrets
    handles: Handles  # global ids and page cursors: opaque, tamper-evident
    sign_in: SignInCodes
    page_sessions: PageSessions
    documents: TrustedDocumentStore
    alerts: AccessAlerts  # access anomaly detector (the anomaly_scan job)
    # Rate limit counters every process shares (Redis or PostgreSQL); None: in memory.
    shared_limits: Storage | None
    clock: Callable[[], datetime]
    owns_keyring: bool = False  # opened here (closed by close), not handed in
    # Group-committed audit appends (started by the app's lifespan; else writes at once).
    writer: AuditWriter | None = None

    def __repr__(self) -> str:
        return f"Vault(db={self.db!r})"

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        keyring: Keyring | None = None,
        database: Database | None = None,
        signer: Signer | None = None,
        policy: PolicyEnforcer | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> Vault:
        if keyring is not None:
            return cls._assemble(
                settings, keyring, database=database, signer=signer, policy=policy, clock=clock
            )
        ring = Keyring.open(settings.keyring_path, pin=settings.pkcs11_pin)
        try:
            return cls._assemble(
                settings, ring, database=database, signer=signer, policy=policy, clock=clock,
                own=True,
            )  # fmt: skip
        except BaseException:
            ring.close()  # a token session is not left open by a vault that did not open
            raise

    @classmethod
    def _assemble(
        cls,
        settings: Settings,
        ring: Keyring,
        *,
        database: Database | None,
        signer: Signer | None,
        policy: PolicyEnforcer | None,
        clock: Callable[[], datetime],
        own: bool = False,
    ) -> Vault:
        audit_signer = signer if signer is not None else load_signer(settings.audit_signing_key)
        db = database if database is not None else open_database(settings)
        keys = DataKeys(ring)
        audit = AuditLog(audit_signer, origin=settings.audit_origin, clock=clock)
        attributes = load_attributes(attributes_path(settings))
        enforcer = policy or PolicyEnforcer.from_default(attributes=attributes.pii_names)
        if enforcer.attributes != attributes.pii_names:
            enforcer.declare_attributes(attributes.pii_names)
        authz = Authorizer(enforcer)
        gate = ProcessingGate(authz, clock)
        secrets = WebhookSecrets.of(ring.provider)
        handles = Handles.of(ring.provider)
        segments = SegmentService(
            authz,
            gate,
            clock,
            handles=handles,
            attributes=attributes,
            min_group=settings.analytics_min_group,
        )
        customers = CustomerService(
            keys,
            authz,
            handles=handles,
            clock=clock,
            phone_region=settings.default_phone_region,
            gate=gate,
            attributes=attributes,
        )
        page_secrets = PageSecrets.of(ring.provider)
        shared_limits = shared_limits_storage(settings, db, clock=lambda: clock().timestamp())
        sign_in = SignInCodes(
            customers, page_secrets, SignInLimits(storage=shared_limits), db=db, audit=audit,
            clock=clock,
        )  # fmt: skip
        page_sessions = PageSessions(page_secrets, clock=clock)
        forget: list[Forgetter] = [segments, sign_in, page_sessions]
        vault = cls(
            settings=settings,
            db=db,
            keyring=ring,
            keys=keys,
            customers=customers,
            interactions=InteractionService(
                keys,
                authz,
                handles=handles,
                clock=clock,
                gate=gate,
                on_recorded=segments.on_customers_changed,
            ),
            gate=gate,
            audit=audit,
            authz=authz,
            trail=AuditQueries(audit, authz, handles=handles),
            policies=PolicyStore(enforcer, authz, db, clock),
            retention=RetentionService(settings, audit),
            erasure=ErasureService(keys, authz, clock=clock, audit=audit, forget=forget),
            segments=segments,
            webhooks=WebhookService(authz, secrets, clock, production=settings.production),
            dispatcher=WebhookDispatcher(secrets, gate, audit, clock=clock),
            page_secrets=page_secrets,
            handles=handles,
            sign_in=sign_in,
            page_sessions=page_sessions,
            documents=TrustedDocumentStore(authz, clock),
            alerts=AccessAlerts(
                Thresholds.of(settings),
                audit,
                AlertDelivery(settings.security_webhook_url, secrets.security_secret, clock=clock),
                clock=clock,
            ),
            shared_limits=shared_limits,
            clock=clock,
            owns_keyring=own,
            writer=AuditWriter(audit, db),
        )
        vault.retention.connect(vault.unit, vault.erasure)  # inactive customers: erased
        return vault

    def rotate_keys(
        self,
        context: AccessContext,
        *,
        rewrap_only: bool = False,
        retire_old: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> RotationReport:
        """Add a key-encryption key version (unless ``rewrap_only``), re-wrap every data key
        under the current version, optionally retire versions no data key uses; audited."""
        version = None if rewrap_only else self.keyring.rotate()
        done = self.keys.rewrap_all(lambda: Session(self.db.engine), self.clock, progress=progress)
        retired: list[int] = []
        if retire_old:
            with self.db.transaction() as session:
                status = self.keys.status(session)
            for old in status.keyring_versions:
                if old != status.current_kek_version and not status.data_keys_by_kek_version.get(
                    old
                ):
                    self.keyring.retire(old)
                    retired.append(old)
        self.audit.record_now(
            self.db, context, AuditAction.KEY_ROTATION,
            detail={
                "kek_version": self.keyring.current_version(),
                "rewrapped": done,
                "retired": [str(v) for v in retired],
            },
        )  # fmt: skip
        return RotationReport(new_version=version, rewrapped=done, retired=retired)

    def reapply_erasures(self) -> ReapplyReport:
        """Erase again every customer a restored database backup brought back although
        the keyring's shred list names it (``cvault erasure reapply``; ``cvault restore``
        runs it): the tombstone returns, restored external ids and consents go, the
        interactions are purged. Each erasure is its own unit of work, audited as
        ``system:erasure``. A customer under a legal hold in the restored database is left
        as it is (it still reads as erased) and reported as held."""
        context = AccessContext.system("erasure")
        erased: list[uuid.UUID] = []
        held: list[uuid.UUID] = []
        for customer_id in self.erasure.restored(self.db):
            try:
                with self.unit(context) as session:
                    self.erasure.erase(session, customer_id)
            except LegalHoldActive:
                held.append(customer_id)
                continue
            erased.append(customer_id)
        self.keys.settled(erased)
        purged = self.erasure.purge_pending(self.db) if erased else 0
        return ReapplyReport(erased=erased, held=held, purged=purged)

    @contextmanager
    def unit(self, context: AccessContext) -> Iterator[Session]:
        """One unit of work for one caller: its reads, writes and audit entries commit
        together or not at all. Services refuse a session opened any other way."""
        buffer = AuditBuffer(context, self.clock)
        # Callables run once the unit has ended, committed or rolled back (each in a
        # transaction of its own): what a refused request must still record, such as a
        # failed verification attempt.
        after_unit: list[Callable[[], None]] = []
        try:
            with self.db.transaction() as session:
                bind(session, context, buffer)
                session.info["cvault.after_unit"] = after_unit
                yield session
                self.audit.write(session, buffer.drain())
                faults.reach("unit.commit")
            for callback in session.info.pop("cvault.after_commit", []):
                callback()
        except BaseException:
            if buffer.denials:  # a refusal is recorded even though its request fails
                self.audit.write_now(self.db, buffer.denials)
            raise
        finally:
            for callback in after_unit:
                callback()
            telemetry.flush()  # the decryptions of this unit, into the metric at once

    @contextmanager
    def query_unit(self, context: AccessContext) -> Iterator[Session]:
        """A unit of work for a query (reads only): its transaction commits, then its
        audit entries go to the group-committed writer (:mod:`vault.audit_trail.writer`),
        and the caller answers only once their batch committed: fail-closed, a failed
        batch fails the unit and nothing read is handed out. Writes made here would
        commit before the audit append; use :meth:`unit` for anything that writes."""
        with self._audited_after(context, self.db.transaction, commits=True) as session:
            yield session

    @contextmanager
    def _audited_after(
        self,
        context: AccessContext,
        transaction: Callable[[], AbstractContextManager[Session]],
        *,
        commits: bool,
    ) -> Iterator[Session]:
        """The body of :meth:`query_unit` and :meth:`read_unit`: the reads in
        ``transaction``, then their audit entries through the writer before the caller
        answers (refusals recorded even when the unit fails)."""
        buffer = AuditBuffer(context, self.clock)
        after_unit: list[Callable[[], None]] = []
        try:
            with transaction() as session:
                bind(session, context, buffer)
                session.info["cvault.after_unit"] = after_unit
                yield session
            self.append_audit(buffer.drain())
            if commits:
                for callback in session.info.pop("cvault.after_commit", []):
                    callback()
        except BaseException:
            if buffer.denials:  # a refusal is recorded even though its request fails
                self.append_audit(buffer.denials)
            raise
        finally:
            for callback in after_unit:
                callback()
            telemetry.flush()

    @contextmanager
    def read_unit(self, context: AccessContext) -> Iterator[Session]:
        """A unit of work for reads that tolerate lag (segment preview and members,
        analytics, audit search and export): a read-only transaction on the replica
        (``CVAULT_DATABASE_REPLICA_URL``; the primary when none is set, read-only too on
        PostgreSQL). Its audit entries go to the primary through the group-committed
        writer once the reads are done and before the caller answers: fail-closed, a
        failed audit append fails the unit, and nothing read is handed out."""
        with self._audited_after(context, self.db.read_transaction, commits=False) as session:
            yield session

    def append_audit(self, entries: list[AuditEntry]) -> None:
        """Append entries outside any unit of work and wait for their commit: through the
        writer (batched while it runs), else at once in a transaction of their own."""
        if self.writer is None:
            self.audit.write_now(self.db, entries)
        else:
            self.writer.append_sync(entries)

    def start_writer(self) -> None:
        """Batch audit appends from now on (the app's lifespan; :meth:`close` stops it)."""
        if self.writer is not None:
            self.writer.start()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # what is queued is written first
        self.db.dispose()
        if self.owns_keyring:
            self.keyring.close()
