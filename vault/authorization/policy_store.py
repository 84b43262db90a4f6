"""The access policy in the database: versioned, changed by administrators, picked up
by every process.

Each change stores the whole policy as a new version (the history is the
audit of what was in force when); the table refuses UPDATE and DELETE like the audit
tables. A policy that would leave no one able to change it again (the administrator
losing the administration purpose), or that names an unknown role, resource, action or
purpose, is refused whole with the rule it breaks. ``reset`` stores the shipped default
as a new version: the operator's way back (``cvault policy reset``). A process loads the
newest version at start and again whenever :meth:`PolicyStore.refresh` sees a newer one,
so a change reaches every process without a restart: on PostgreSQL a stored version is
announced (NOTIFY, on commit) and servers reload at once; they also poll every few
seconds, the fallback and SQLite's only way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies import (
    AccessDenied,
    Action,
    PolicyEnforcer,
    PolicyError,
    PolicyLines,
    Role,
    default_policy_lines,
)
from vault.authorization.authorizer import SYSTEM_ROLE, Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.errors import InvalidInput
from vault.storage.db import Database
from vault.storage.models import PolicyVersionRow
from vault.storage.notify import Change, announce

__all__ = ["PolicyStore", "PolicyVersion"]

_ADMINS = frozenset({SYSTEM_ROLE, Role.ADMIN.value})


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One stored version of the policy: who stored it, when, and how many lines."""

    version: int
    actor: str
    created_at: datetime
    lines: int


class PolicyStore:
    def __init__(
        self,
        enforcer: PolicyEnforcer,
        authz: Authorizer,
        db: Database,
        clock: Callable[[], datetime],
    ) -> None:
        adapter = enforcer.adapter
        if not isinstance(adapter, PolicyLines):
            raise TypeError("the policy store needs an enforcer over PolicyLines")
        self._enforcer = enforcer
        self._lines = adapter
        self._authz = authz
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self.version = 0

    def __repr__(self) -> str:
        return f"PolicyStore(version={self.version})"

    def refresh(self) -> bool:
        """Load the newest stored version if it is newer than the one in force."""
        with self._db.transaction() as session:
            newest = session.scalar(select(func.max(PolicyVersionRow.version)))
            if newest is None or newest <= self.version:
                return False
            text = session.scalar(
                select(PolicyVersionRow.lines).where(PolicyVersionRow.version == newest)
            )
        with self._lock:
            if newest > self.version and text is not None:
                self._apply(text.splitlines(), newest)
        return True

    def _apply(self, lines: Sequence[str], version: int) -> None:
        previous = self._lines.lines
        self._lines.replace(lines)
        try:
            self._enforcer.reload()
        except PolicyError:
            self._lines.replace(previous)
            raise
        self.version = version

    def current(self, session: Session) -> tuple[int, list[str]]:
        """The policy in force: (version, lines); version 0 is the shipped default."""
        self._require_admin(session)
        return self.version, list(self._lines.lines)

    def history(self, session: Session) -> list[PolicyVersion]:
        """Every stored version, newest first (version 0, the shipped default, is not stored)."""
        self._require_admin(session)
        rows = session.execute(
            select(
                PolicyVersionRow.version,
                PolicyVersionRow.actor,
                PolicyVersionRow.created_at,
                PolicyVersionRow.lines,
            ).order_by(PolicyVersionRow.version.desc())
        ).all()
        return [
            PolicyVersion(r.version, r.actor, r.created_at, len(_rules(r.lines.splitlines())))
            for r in rows
        ]

    def lines_of(self, session: Session, version: int) -> list[str]:
        """The lines of one stored version (0: the shipped default)."""
        self._require_admin(session)
        if version == 0:
            return list(PolicyLines(default_policy_lines()).lines)
        text = session.scalar(
            select(PolicyVersionRow.lines).where(PolicyVersionRow.version == version)
        )
        if text is None:
            raise InvalidInput("version", "is not a stored policy version")
        return text.splitlines()

    def reset(self, session: Session) -> int:
        """Store the shipped default policy as a new version (administrators only)."""
        return self.replace(session, default_policy_lines())

    def check(self, lines: Sequence[str]) -> None:
        """Raise :class:`InvalidInput` naming the first rule ``lines`` break (a bad line,
        by its number and text; an unknown or misplaced mask format; a policy that takes
        the administration purpose away from the administrator). Stores nothing."""
        try:
            self._enforcer.with_lines(lines).check_keeps_control()
        except PolicyError as exc:
            raise InvalidInput("lines", str(exc)) from None

    def replace(self, session: Session, lines: Sequence[str]) -> int:
        """Store a new policy version (administrators only). It is checked by building an
        enforcer first: a bad line, or a policy that would take the administration purpose
        away from the administrator, is refused with the rule it breaks; nothing is stored."""
        self._require_admin(session)
        self.check(lines)
        newest = session.scalar(select(func.max(PolicyVersionRow.version))) or 0
        version = max(newest, self.version) + 1
        session.add(
            PolicyVersionRow(
                version=version,
                lines="\n".join(line.strip() for line in lines),
                actor=access_of(session).actor.subject,
                created_at=self._clock(),
            )
        )
        session.flush()
        announce(session, Change.policy(version))  # other processes reload on commit
        buffer_of(session).add(
            AuditAction.POLICY_CHANGE,
            detail={"version": version, "lines": len(lines)},
        )
        session.info.setdefault("cvault.after_commit", []).append(
            lambda: self._apply_after_commit(list(lines), version)
        )
        return version

    def _apply_after_commit(self, lines: list[str], version: int) -> None:
        with self._lock:
            if version > self.version:
                self._apply(lines, version)

    def _require_admin(self, session: Session) -> None:
        ctx = access_of(session)
        if ctx.actor.role not in _ADMINS or (
            ctx.actor.role == Role.ADMIN.value and ctx.purpose != "administration"
        ):
            error = AccessDenied(ctx.actor.role, ctx.purpose, "policy", Action.WRITE)
            raise self._authz.denied(session, error)


def _rules(lines: Sequence[str]) -> list[str]:
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
