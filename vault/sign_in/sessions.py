"""Page sessions: server-side, so that signing out (or erasure) truly ends them.

The browser holds a signed cookie with a random token; the database holds the token's
keyed digest, the kind (``privacy`` for a customer, ``console`` for staff), who it
acts for, and when it was last used. A session ends when idle past its kind's limit
(15 minutes on the privacy page), at its absolute expiry, when revoked, or when its
customer is no longer live. Lookups do not need an access context: a session is not
customer data, and what it may reach is decided afterwards under the context it yields.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from vault.authorization.context import AccessContext, Actor, buffer_of
from vault.crypto.pages import PageSecrets, SignatureInvalid
from vault.errors import InvalidInput
from vault.sign_in.errors import SessionErased, SessionInvalid
from vault.storage.models import CustomerRow, PageSessionRow
from vault.types import CustomerStatus

__all__ = [
    "IDLE_LIMITS",
    "LINK_LIFETIME",
    "STAFF_PURPOSES",
    "OpenedSession",
    "PageSession",
    "PageSessions",
]

# (idle limit, absolute lifetime) per kind of session.
IDLE_LIMITS: Final = {
    "privacy": (timedelta(minutes=15), timedelta(hours=12)),
    "console": (timedelta(minutes=30), timedelta(hours=10)),
}
# A console sign-in link: valid 5 minutes, once. Only staff roles get one, each acting
# with its own purpose.
LINK_LIFETIME: Final = timedelta(minutes=5)
STAFF_PURPOSES: Final = {"compliance_officer": "compliance", "admin": "administration"}
_LINK_LABEL: Final = "console-link"
_COOKIE_LABEL: Final = "session-cookie"
_DIGEST_LABEL: Final = "session-token"
_MAX_SUBJECT: Final = 128
_MAX_TOKEN: Final = 256
_LIVE: Final = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
_ERASED: Final = CustomerStatus.ERASED.value


@dataclass(frozen=True, slots=True)
class PageSession:
    """A live session: whom it acts for. ``context`` is the access context of its requests."""

    id: uuid.UUID
    kind: str
    subject: str
    role: str
    customer_id: uuid.UUID | None
    client: str | None = field(default=None, repr=False)

    def context(self, purpose: str, request_id: str | None = None) -> AccessContext:
        actor = Actor(self.subject, self.role, self.customer_id)
        if request_id is None:
            return AccessContext(actor=actor, purpose=purpose, client=self.client)
        return AccessContext(
            actor=actor, purpose=purpose, request_id=request_id, client=self.client
        )


@dataclass(frozen=True, slots=True)
class OpenedSession:
    session: PageSession
    cookie: str = field(repr=False)
    expires_at: datetime = field(repr=False)


class PageSessions:
    def __init__(self, secrets: PageSecrets, *, clock: Callable[[], datetime]) -> None:
        self._secrets = secrets
        self._clock = clock

    def __repr__(self) -> str:
        return "PageSessions()"

    def open_for_customer(
        self, session: Session, customer_id: uuid.UUID, *, client: str | None = None
    ) -> OpenedSession:
        """A privacy-page session acting as the customer (role data_subject)."""
        session_id = uuid.uuid4()
        return self._open(
            session, session_id, "privacy", f"privacy:{session_id}", "data_subject", customer_id,
            client,
        )  # fmt: skip

    def open_for_staff(
        self, session: Session, subject: str, role: str, *, client: str | None = None
    ) -> OpenedSession:
        """A console session acting as a staff member (``subject`` from the identity
        provider, ``role`` a vault role mapped from its claims)."""
        return self._open(session, uuid.uuid4(), "console", subject, role, None, client)

    def issue_link(self, session: Session, subject: str, role: str) -> str:
        """A one-time console sign-in token for ``subject`` acting as ``role`` (a staff
        role only: :data:`STAFF_PURPOSES`); valid :data:`LINK_LIFETIME`, once. The row is a
        console session not yet begun: it holds the token's keyed digest under the link's
        own label, so the token can never be replayed as a session cookie. Audited."""
        if role not in STAFF_PURPOSES:
            raise InvalidInput("role", "must be a staff role (compliance_officer or admin)")
        if not isinstance(subject, str) or not 0 < len(subject.strip()) <= _MAX_SUBJECT:
            raise InvalidInput("subject", f"must be 1 to {_MAX_SUBJECT} characters")
        now = self._clock()
        token = self._secrets.new_token()
        session.add(
            PageSessionRow(
                id=uuid.uuid4(),
                token_digest=self._secrets.digest(_LINK_LABEL, token),
                kind="console",
                customer_id=None,
                subject=subject.strip(),
                role=role,
                created_at=now,
                last_seen_at=now,
                expires_at=now + LINK_LIFETIME,
            )
        )
        buffer_of(session).add(
            AuditAction.SIGN_IN, detail={"step": "link_issued", "kind": "console", "role": role}
        )
        return token

    def redeem_link(
        self, session: Session, token: str, *, client: str | None = None
    ) -> OpenedSession:
        """The console session of an unspent, unexpired link token: the link's digest is
        replaced by a fresh session token's (so the link works once) and the session's
        lifetime starts now. Raises :class:`~vault.sign_in.errors.SessionInvalid`."""
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN:
            raise SessionInvalid("no link")
        row = session.scalar(
            select(PageSessionRow)
            .where(PageSessionRow.token_digest == self._secrets.digest(_LINK_LABEL, token))
            .with_for_update()
        )
        now = self._clock()
        if row is None or row.kind != "console" or row.revoked_at is not None:
            raise SessionInvalid("unknown link")
        if now >= row.expires_at or row.role not in STAFF_PURPOSES:
            raise SessionInvalid("expired link")
        fresh = self._secrets.new_token()
        row.token_digest = self._secrets.digest(_DIGEST_LABEL, fresh)
        row.last_seen_at = now
        row.expires_at = now + IDLE_LIMITS["console"][1]
        opened = PageSession(row.id, row.kind, row.subject, row.role, None, client)
        return OpenedSession(
            opened, cookie=self._secrets.seal(_COOKIE_LABEL, fresh), expires_at=row.expires_at
        )

    def _open(  # noqa: PLR0917 - two private call sites, every argument named
        self,
        session: Session,
        session_id: uuid.UUID,
        kind: str,
        subject: str,
        role: str,
        customer_id: uuid.UUID | None,
        client: str | None,
    ) -> OpenedSession:
        now = self._clock()
        token = self._secrets.new_token()
        expires = now + IDLE_LIMITS[kind][1]
        session.add(
            PageSessionRow(
                id=session_id,
                token_digest=self._secrets.digest(_DIGEST_LABEL, token),
                kind=kind,
                customer_id=customer_id,
                subject=subject,
                role=role,
                created_at=now,
                last_seen_at=now,
                expires_at=expires,
            )
        )
        opened = PageSession(session_id, kind, subject, role, customer_id, client)
        return OpenedSession(
            opened, cookie=self._secrets.seal(_COOKIE_LABEL, token), expires_at=expires
        )

    def resume(
        self, session: Session, cookie: str | None, kind: str, *, client: str | None = None
    ) -> PageSession:
        """The live session of ``cookie``, its idle clock restarted; raises
        :class:`~vault.sign_in.errors.SessionInvalid` otherwise (the row, if any, is
        left as it is: an idle session stays ended)."""
        if not cookie:
            raise SessionInvalid("no cookie")
        try:
            token = self._secrets.unseal(_COOKIE_LABEL, cookie)
        except SignatureInvalid:
            raise SessionInvalid("forged cookie") from None
        row = session.scalar(
            select(PageSessionRow).where(
                PageSessionRow.token_digest == self._secrets.digest(_DIGEST_LABEL, token)
            )
        )
        now = self._clock()
        if row is None or row.kind != kind:
            raise SessionInvalid("unknown session")
        status = None
        if row.customer_id is not None:
            status = session.scalar(
                select(CustomerRow.status).where(CustomerRow.id == row.customer_id)
            )
        if status == _ERASED and row.revoked_at is not None and now < row.expires_at:
            raise SessionErased  # ended by the erasure (sign-outs before it were deleted)
        if row.revoked_at is not None:
            raise SessionInvalid("signed out")
        if now - row.last_seen_at > IDLE_LIMITS[kind][0] or now >= row.expires_at:
            raise SessionInvalid("expired")
        if row.customer_id is not None and status not in _LIVE:
            raise SessionInvalid("customer gone")
        row.last_seen_at = now
        return PageSession(row.id, row.kind, row.subject, row.role, row.customer_id, client)

    def revoke(self, session: Session, page_session: PageSession) -> None:
        """Sign out: the session can never be resumed again; audited (in the unit of work
        of the session's own context)."""
        session.execute(
            update(PageSessionRow)
            .where(PageSessionRow.id == page_session.id, PageSessionRow.revoked_at.is_(None))
            .values(revoked_at=self._clock())
        )
        buffer_of(session).add(
            AuditAction.SIGN_IN,
            customer_id=page_session.customer_id,
            detail={"step": "signed_out", "kind": page_session.kind},
        )

    def forget_customer(self, session: Session, customer_id: uuid.UUID) -> None:
        """For erasure: no session of the customer outlives the record. Ended ones go; live
        ones end now and stay until their expiry, so the browser that held one is told,
        once, that the erasure is done (:class:`SessionErased`), instead of being sent to a
        sign-in that can no longer work."""
        mine = PageSessionRow.customer_id == customer_id
        now = self._clock()
        session.execute(
            delete(PageSessionRow).where(
                mine,
                or_(
                    PageSessionRow.revoked_at.is_not(None),
                    PageSessionRow.expires_at <= now,
                    PageSessionRow.last_seen_at < now - IDLE_LIMITS["privacy"][0],
                ),
            )
        )
        session.execute(update(PageSessionRow).where(mine).values(revoked_at=now))
