"""Signing in to the pages: one-time codes, page sessions, rate limits, code delivery.

Owns: ``codes`` (``SignInCodes``: issue a code for the one customer whose email or
phone is on record, check it; ``sign_in_context``, ``clean_code``), ``sessions``
(``PageSessions``: server-side sessions, resumed, revoked, forgotten on erasure),
``limits`` (``SignInLimits``: per-contact and per-client rate limits with ``limits``),
``delivery`` (``Sender``, ``SmtpSender``, ``FileOutbox``, ``DeliveryQueue``),
``errors``. The ``sign_in_codes`` and ``page_sessions`` tables are its own.
May import: :mod:`vault.customers` (the contact lookup through its service),
:mod:`vault.audit_trail`, :mod:`vault.authorization`, the kernel (``crypto.pages`` for
every digest and MAC), and ``audit``. Never :mod:`vault.segments`,
:mod:`vault.interactions` or anything above.
"""

from vault.sign_in.codes import (
    CODE_LIFETIME,
    MAX_WRONG_TRIES,
    IssuedCode,
    SignInCodes,
    clean_code,
    sign_in_context,
)
from vault.sign_in.delivery import (
    DeliveryQueue,
    FileOutbox,
    OutgoingMessage,
    Sender,
    SmtpSender,
    sender_for,
)
from vault.sign_in.errors import (
    SessionErased,
    SessionInvalid,
    SignInFailed,
    SignInLimited,
    SignInUnavailable,
)
from vault.sign_in.limits import SignInLimits
from vault.sign_in.sessions import (
    IDLE_LIMITS,
    LINK_LIFETIME,
    STAFF_PURPOSES,
    OpenedSession,
    PageSession,
    PageSessions,
)

__all__ = [
    "CODE_LIFETIME",
    "IDLE_LIMITS",
    "LINK_LIFETIME",
    "MAX_WRONG_TRIES",
    "STAFF_PURPOSES",
    "DeliveryQueue",
    "FileOutbox",
    "IssuedCode",
    "OpenedSession",
    "OutgoingMessage",
    "PageSession",
    "PageSessions",
    "Sender",
    "SessionErased",
    "SessionInvalid",
    "SignInCodes",
    "SignInFailed",
    "SignInLimited",
    "SignInLimits",
    "SignInUnavailable",
    "SmtpSender",
    "clean_code",
    "sender_for",
    "sign_in_context",
]
