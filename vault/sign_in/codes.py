"""One-time sign-in codes for the privacy page.

A customer names the email address or phone number on record; if exactly one live
customer has it, a code is made for the browser that asked and handed back to be sent
there. Whether or not anyone matched, the caller does the same work and gets the same
answer (the edge says "if it is on record, a code is on its way" either way), and the
rate limits count both alike.

Codes are 8 digits from :mod:`secrets`, stored only as a keyed digest
(:mod:`vault.crypto.pages`), valid 10 minutes, single use; the fifth wrong try
invalidates the code, and a new code invalidates the customer's earlier ones. A wrong
try is counted (and its failure audited) once the unit of work has ended, in a
transaction of its own, so the refused unit's rollback cannot undo it.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit.entries import AuditAction, Outcome
from vault.audit_trail.log import AuditBuffer, AuditLog
from vault.authorization.context import AccessContext, Actor, access_of, buffer_of
from vault.crypto.pages import CODE_DIGITS, CodeMismatch, PageSecrets
from vault.customers import CustomerService
from vault.errors import InvalidInput
from vault.sign_in.errors import SignInFailed
from vault.sign_in.limits import SignInLimits
from vault.storage.db import Database
from vault.storage.models import CustomerRow, SignInCodeRow
from vault.types import CustomerStatus, PiiField

__all__ = [
    "CODE_LIFETIME",
    "MAX_WRONG_TRIES",
    "IssuedCode",
    "SignInCodes",
    "clean_code",
    "sign_in_context",
]

CODE_LIFETIME: Final = timedelta(minutes=10)
MAX_WRONG_TRIES: Final = 5
CHANNELS: Final = {"email": PiiField.EMAIL, "phone": PiiField.PHONE}
_LIVE: Final = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
# Spaces, dots and every dash (U+2010 to U+2015 included) between the digits of a paste.
_SEPARATORS: Final = re.compile("[\\s.\\-\u2010-\u2015]")
_MAX_CONTACT: Final = 320


def sign_in_context(client: str | None, request_id: str | None = None) -> AccessContext:
    """The vault acting for someone not signed in yet: it may look a contact up (ids
    only) and keep sign-in codes; it reads no record. ``client`` is a keyed pseudonym."""
    context = AccessContext(actor=Actor("system:sign-in", "system"), purpose="self", client=client)
    if request_id is None:
        return context
    return AccessContext(context.actor, context.purpose, request_id=request_id, client=client)


def clean_code(typed: str) -> str | None:
    """The 8 ASCII digits of a typed or pasted code (spaces and dashes dropped, Persian,
    Thai or other decimal digits read as digits), or None if it is not 8 digits."""
    if len(typed) > 64:
        return None
    digits = []
    for ch in _SEPARATORS.sub("", typed):
        value = unicodedata.decimal(ch, None)
        if value is None:
            return None
        digits.append(str(value))
    code = "".join(digits)
    return code if len(code) == CODE_DIGITS else None


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code to send: to ``address`` (the email or phone on record), on ``channel``."""

    challenge_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    expires_at: datetime
    address: str = field(repr=False)
    code: str = field(repr=False)


class SignInCodes:
    """Issues and checks one-time sign-in codes. Every method takes the unit's session,
    opened with :func:`sign_in_context`."""

    def __init__(
        self,
        customers: CustomerService,
        secrets: PageSecrets,
        limits: SignInLimits,
        *,
        db: Database,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self._customers = customers
        self._secrets = secrets
        self._limits = limits
        self._db = db
        self._audit = audit
        self._clock = clock

    def __repr__(self) -> str:
        return "SignInCodes()"

    def request(
        self, session: Session, channel: str, contact: str, *, browser: str
    ) -> IssuedCode | None:
        """A code for the one live customer whose ``channel`` (``email`` or ``phone``) is
        ``contact``, bound to ``browser``; None when nobody (or more than one) matches.
        Earlier unspent codes of that customer stop working. Raises
        :class:`~vault.sign_in.errors.SignInLimited` past a rate limit and
        :class:`~vault.errors.InvalidInput` for a malformed contact."""
        field_name = CHANNELS.get(channel)
        if field_name is None:
            raise InvalidInput("channel", "must be email or phone")
        if not isinstance(contact, str) or not contact.strip() or len(contact) > _MAX_CONTACT:
            raise InvalidInput(channel, "is required")
        client = access_of(session).client or "unknown"
        contact_key = self._secrets.digest("sign-in-contact", f"{channel}:{contact.strip()}")
        self._limits.request(contact_key, client)
        owners = self._customers.contact_owners(session, field_name, contact.strip())
        now = self._clock()
        challenge = uuid.uuid4()
        code, digest = self._secrets.new_code(challenge)  # made either way: the same work
        if len(owners) != 1:
            buffer_of(session).add(
                AuditAction.SIGN_IN,
                detail={"step": "requested", "channel": channel, "matched": False},
            )
            return None
        customer_id, address = owners[0]
        session.execute(
            update(SignInCodeRow)
            .where(
                SignInCodeRow.customer_id == customer_id,
                SignInCodeRow.used_at.is_(None),
                SignInCodeRow.invalidated_at.is_(None),
            )
            .values(invalidated_at=now)
        )
        session.add(
            SignInCodeRow(
                id=challenge,
                customer_id=customer_id,
                channel=channel,
                browser_digest=self._browser(browser),
                code_digest=digest,
                created_at=now,
                expires_at=now + CODE_LIFETIME,
                attempts=0,
            )
        )
        buffer_of(session).add(
            AuditAction.SIGN_IN,
            customer_id=customer_id,
            detail={"step": "requested", "channel": channel, "matched": True},
        )
        return IssuedCode(
            challenge_id=challenge,
            customer_id=customer_id,
            channel=channel,
            expires_at=now + CODE_LIFETIME,
            address=address,
            code=code,
        )

    def verify(self, session: Session, typed: str, *, browser: str) -> uuid.UUID:
        """The customer whose newest pending code for ``browser`` is ``typed``; the code is
        spent. Anything else raises :class:`~vault.sign_in.errors.SignInFailed` (one
        error for every reason) after counting the wrong try."""
        self._limits.attempt(access_of(session).client or "unknown")
        now = self._clock()
        row = session.scalar(
            select(SignInCodeRow)
            .where(
                SignInCodeRow.browser_digest == self._browser(browser),
                SignInCodeRow.used_at.is_(None),
                SignInCodeRow.invalidated_at.is_(None),
            )
            .order_by(SignInCodeRow.created_at.desc())
            .limit(1)
            .with_for_update()
        )
        if row is None or row.expires_at <= now:
            raise self._failed(session, None, "no_code" if row is None else "expired")
        code = clean_code(typed) if isinstance(typed, str) else None
        try:
            self._secrets.check_code(row.id, code or "", row.code_digest)
        except CodeMismatch:
            raise self._failed(session, row.id, "wrong_code") from None
        status = session.scalar(select(CustomerRow.status).where(CustomerRow.id == row.customer_id))
        if status not in _LIVE:
            raise self._failed(session, None, "customer_gone")
        row.used_at = now
        buffer_of(session).add(
            AuditAction.SIGN_IN,
            customer_id=row.customer_id,
            detail={"step": "signed_in", "channel": row.channel},
        )
        return row.customer_id

    def forget_customer(self, session: Session, customer_id: uuid.UUID) -> None:
        """For erasure: the customer's codes go (their rows name the customer)."""
        session.query(SignInCodeRow).filter(SignInCodeRow.customer_id == customer_id).delete()

    # -- helpers ----------------------------------------------------------------------

    def _browser(self, browser: str) -> str:
        return self._secrets.digest("sign-in-browser", browser)

    def _failed(self, session: Session, challenge: uuid.UUID | None, why: str) -> SignInFailed:
        """After the unit: count the wrong try (the fifth invalidates the code) and audit
        the failure, in a transaction of its own."""
        context = access_of(session)
        db, audit, clock = self._db, self._audit, self._clock

        def record() -> None:
            with db.transaction() as own:
                customer_id = None
                if challenge is not None:
                    row = own.scalar(
                        select(SignInCodeRow).where(SignInCodeRow.id == challenge).with_for_update()
                    )
                    if row is not None:
                        customer_id = row.customer_id
                        row.attempts = (row.attempts or 0) + 1
                        if row.attempts >= MAX_WRONG_TRIES and row.invalidated_at is None:
                            row.invalidated_at = clock()
                entry = AuditBuffer(context, clock).entry(
                    AuditAction.SIGN_IN, customer_id, None, Outcome.FAILED,
                    {"step": "failed", "reason": why},
                )  # fmt: skip
                audit.write(own, [entry])

        session.info["cvault.after_unit"].append(record)
        return SignInFailed()
