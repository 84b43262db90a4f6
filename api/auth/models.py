"""The authenticated caller, as the rest of the API sees it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from policies.purposes import Role

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: who (``subject``), as what (``role``), bound to which customer.

    ``customer_id`` is set for ``data_subject`` tokens only: the domain layer
    serves such a caller its own record and nothing else.
    """

    subject: str
    role: Role
    customer_id: UUID | None = None
    token_id: str | None = None
