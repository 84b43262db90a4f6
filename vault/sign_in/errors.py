"""What can go wrong signing in. Each error names no contact, code or token: the pages
show one fixed sentence per error, the same whether or not a customer exists."""

from __future__ import annotations

from vault.errors import VaultError

__all__ = [
    "SessionErased",
    "SessionInvalid",
    "SignInFailed",
    "SignInLimited",
    "SignInUnavailable",
]


class SignInFailed(VaultError):
    """The code is wrong, spent, expired, invalidated by too many wrong tries or a newer
    code, or was never sent to this browser: one error for all, so none is told apart."""

    code = "UNAUTHENTICATED"

    def __init__(self) -> None:
        super().__init__("the sign-in code is not valid")


class SignInLimited(VaultError):
    """Too many sign-in requests or tries from this client or for this contact."""

    code = "RATE_LIMITED"

    def __init__(self, scope: str) -> None:
        super().__init__(f"too many sign-in attempts ({scope}); try again later")
        self.scope = scope


class SignInUnavailable(VaultError):
    """No sender can deliver a code on this channel (no SMTP server, no SMS gateway)."""

    code = "UNAVAILABLE"

    def __init__(self, channel: str) -> None:
        super().__init__(f"sign-in by {channel} is not available here")
        self.channel = channel


class SessionInvalid(VaultError):
    """The session cookie is missing, forged, revoked, idle too long or expired, or its
    customer is gone."""

    code = "UNAUTHENTICATED"

    def __init__(self, why: str) -> None:
        super().__init__(f"no valid session: {why}")
        self.why = why


class SessionErased(SessionInvalid):
    """The session was live when its customer was erased: the browser that held it may be
    told that the erasure is done (once; the session never resumes)."""

    def __init__(self) -> None:
        super().__init__("customer erased")
