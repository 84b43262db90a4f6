"""Policy decisions inside the domain layer, so that no edge can skip them.

Every read resolves each PII field to clear, masked or hidden for the caller's
role and purpose (Casbin, :mod:`policies`); every write needs a write grant on
each resource it touches; a data subject reaches its own record only. A refusal
raises :class:`policies.AccessDenied` and is written to the audit trail in a
transaction of its own, so it survives the rollback of the refused request.

The operator's own commands (``cvault import``, ``demo``) act as the ``system``
role, which no token can carry: it reads in clear and may write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy.orm import Session

from policies import (
    AccessDenied,
    Action,
    Explanation,
    PolicyEnforcer,
    Resolution,
    Resource,
    Role,
)
from vault import telemetry
from vault.authorization.context import access_of, buffer_of

__all__ = ["SYSTEM_ROLE", "Authorizer"]

SYSTEM_ROLE = "system"
_E = TypeVar("_E", bound=Exception)


class Authorizer:
    def __init__(self, enforcer: PolicyEnforcer) -> None:
        self.enforcer = enforcer

    def __repr__(self) -> str:
        return f"Authorizer(enforcer={self.enforcer!r})"

    def _deny(
        self,
        session: Session,
        error: _E,
        *,
        customer_id: uuid.UUID | None = None,
        fields: Iterable[str] = (),
    ) -> _E:
        """Note the refusal in the unit's audit buffer: ``Vault.unit`` writes it even when
        the refused unit of work rolls back."""
        buffer_of(session).deny(customer_id, dict.fromkeys(fields, "denied"))
        telemetry.refused(str(getattr(error, "code", telemetry.OTHER)))
        return error

    def denied(self, session: Session, error: _E, customer_id: uuid.UUID | None = None) -> _E:
        """Audit a refusal decided elsewhere in the domain, and return it to raise."""
        return self._deny(session, error, customer_id=customer_id)

    def reads(self, session: Session) -> dict[str, Resolution]:
        """How each resource reaches this caller (raises if the purpose is refused)."""
        ctx = access_of(session)
        if ctx.actor.role == SYSTEM_ROLE:
            return dict.fromkeys(self.enforcer.read_resources, Resolution.CLEAR)
        try:
            return self.enforcer.resolve_all(ctx.actor.role, ctx.purpose)
        except AccessDenied as exc:
            raise self._deny(session, exc) from None

    def mask_formats(self, session: Session) -> dict[str, str]:
        """The mask format of each customer field that reaches this caller masked (the
        policy's p3 lines; ``default`` where none names one). The system role reads in
        clear: nothing is masked."""
        ctx = access_of(session)
        if ctx.actor.role == SYSTEM_ROLE:
            return {}
        try:
            return dict(self.enforcer.mask_formats(ctx.actor.role, ctx.purpose))
        except AccessDenied as exc:
            raise self._deny(session, exc) from None

    def check_writes(
        self,
        session: Session,
        resources: Iterable[str],
        customer_id: uuid.UUID | None = None,
    ) -> None:
        ctx = access_of(session)
        if ctx.actor.role == SYSTEM_ROLE:
            return
        wanted = list(dict.fromkeys(resources))
        try:
            for resource in wanted:
                self.enforcer.check_write(ctx.actor.role, ctx.purpose, resource)
        except AccessDenied as exc:
            raise self._deny(session, exc, customer_id=customer_id, fields=wanted) from None

    def check_reads(
        self, session: Session, resource: str, customer_id: uuid.UUID | None = None
    ) -> None:
        """Raise (audited) unless the caller may read ``resource`` (consent, data requests)
        in clear for its purpose."""
        ctx = access_of(session)
        if ctx.actor.role == SYSTEM_ROLE:
            return
        try:
            how = self.enforcer.resolve(ctx.actor.role, ctx.purpose, resource)
        except AccessDenied as exc:
            raise self._deny(session, exc, customer_id=customer_id) from None
        if how != Resolution.CLEAR:
            error = AccessDenied(ctx.actor.role, ctx.purpose, resource, Action.READ)
            raise self._deny(session, error, customer_id=customer_id, fields=[resource])

    def check_owner(self, session: Session, customer_id: uuid.UUID) -> None:
        """A data subject reaches its own record only."""
        ctx = access_of(session)
        if ctx.actor.role != Role.DATA_SUBJECT.value:
            return
        if ctx.actor.customer_id != customer_id:
            error = AccessDenied(ctx.actor.role, ctx.purpose, "customer", Action.READ)
            raise self._deny(session, error, customer_id=customer_id)

    def check_listing(self, session: Session) -> None:
        """Searching and listing many customers is not for a data subject."""
        ctx = access_of(session)
        if ctx.actor.role == Role.DATA_SUBJECT.value:
            error = AccessDenied(ctx.actor.role, ctx.purpose, "customers", Action.READ)
            raise self._deny(session, error)

    def explain(self, session: Session, role: str, resource: str, purpose: str) -> Explanation:
        """Which policy line decides a field; for administrators and compliance officers."""
        ctx = access_of(session)
        if ctx.actor.role not in _EXPLAINERS:
            error = AccessDenied(ctx.actor.role, ctx.purpose, "policy", Action.READ)
            raise self._deny(session, error)
        return self.enforcer.explain(role, resource, purpose)


_EXPLAINERS = frozenset({SYSTEM_ROLE, Role.ADMIN.value, Role.COMPLIANCE_OFFICER.value})
PROFILE = Resource.PROFILE.value
