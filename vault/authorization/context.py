"""Who is asking, for what purpose, in which request: carried by every unit of work.

Services read the context from the session they are given; a session without
one is refused, so no edge can reach customer data without naming its purpose
and without leaving an audit entry.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from vault.errors import VaultError

__all__ = ["AccessContext", "AccessContextMissing", "Actor", "access_of"]

_IDENT = re.compile(r"^[A-Za-z0-9_.:/@+|-]{1,128}$")
_KEY = "cvault.access"


class AccessContextMissing(VaultError):
    """A service was called outside ``Vault.unit(context)``."""

    code = "INTERNAL"


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller: a token subject and its role (and, for a data
    subject, the customer id the token is bound to)."""

    subject: str
    role: str
    customer_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        for name in ("subject", "role"):
            if not _IDENT.match(getattr(self, name)):
                raise ValueError(f"actor {name} must be a short identifier")


@dataclass(frozen=True, slots=True)
class AccessContext:
    actor: Actor
    purpose: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client: str | None = None  # a keyed pseudonym of the client address, never the address

    @classmethod
    def system(cls, name: str, *, purpose: str = "administration") -> AccessContext:
        """The vault acting for an operator command (``cvault import``, ``demo``)."""
        return cls(actor=Actor(subject=f"system:{name}", role="system"), purpose=purpose)


def bind(session: Session, context: AccessContext, buffer: Any) -> None:  # noqa: ANN401
    session.info[_KEY] = (context, buffer)


def access_of(session: Session) -> AccessContext:
    try:
        return session.info[_KEY][0]  # type: ignore[no-any-return]
    except KeyError:
        raise AccessContextMissing("customer data is only reachable inside Vault.unit()") from None


def buffer_of(session: Session) -> Any:  # noqa: ANN401
    try:
        return session.info[_KEY][1]
    except KeyError:
        raise AccessContextMissing("customer data is only reachable inside Vault.unit()") from None
