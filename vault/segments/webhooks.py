"""Webhooks that hear when customers enter or leave segments: registration.

A webhook names an http(s) URL (https in production, no credentials in it), the
segments it follows and one purpose. Every method runs in the caller's ``Vault.unit``:
the caller needs the ``segments`` write grant (the read grant to list) for its own
purpose, and a webhook's purpose is the caller's: a ``marketing_email`` caller registers
``marketing_email`` webhooks and sees and disables only those (the operator's ``system``
role may act for any purpose). Each call is audited (``webhook.change``,
``webhook.read``) with ids and counts only.

The signing secret is derived in :mod:`vault.crypto.webhooks` from the keyring, the
webhook id and a version, returned once by :meth:`WebhookService.create` and never
stored. Delivery (fan-out, signing, retries, the consent re-check at send time) is
:class:`vault.segments.delivery.WebhookDispatcher`, re-exported here.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies import AccessDenied, Action
from policies.purposes import RegistryError, Resource, purpose_info
from vault.authorization.authorizer import SYSTEM_ROLE, Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.crypto.webhooks import WebhookSecrets
from vault.errors import InvalidInput, VaultError
from vault.segments.delivery import (
    DeliveryReport,
    DeliveryState,
    Send,
    SkipReason,
    WebhookDispatcher,
    WebhookEventType,
    http_send,
)
from vault.segments.service import SegmentNotFound
from vault.storage.models import SegmentRow, WebhookDeliveryRow, WebhookRow

__all__ = [
    "DeliveryReport",
    "DeliveryState",
    "NewWebhook",
    "Send",
    "Webhook",
    "WebhookDispatcher",
    "WebhookEventType",
    "WebhookNotFound",
    "WebhookService",
    "checked_url",
    "http_send",
]

_RESOURCE = Resource.SEGMENTS.value
_MAX_URL = 2048
_MAX_SEGMENTS = 100


class WebhookNotFound(VaultError):
    code = "NOT_FOUND"

    def __init__(self, webhook_id: uuid.UUID) -> None:
        super().__init__(f"webhook {webhook_id} not found")
        self.webhook_id = webhook_id


@dataclass(frozen=True, slots=True)
class Webhook:
    id: uuid.UUID
    url: str
    purpose: str
    segment_ids: tuple[uuid.UUID, ...]
    created_at: datetime
    disabled_at: datetime | None

    def __repr__(self) -> str:
        return f"Webhook(id={self.id})"


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A webhook just registered and its signing secret: shown this once, never stored."""

    webhook: Webhook
    secret: str = field(repr=False)


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        purpose=row.purpose,
        segment_ids=tuple(uuid.UUID(s) for s in row.segment_ids),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def checked_url(url: str, *, production: bool) -> str:
    """The URL, if it is http(s) with a host and no credentials (https in production);
    the error names the rule, never the URL."""
    value = url.strip()
    if not value or len(value) > _MAX_URL or any(ch <= " " or ch == "\x7f" for ch in value):
        raise InvalidInput("url", f"must be an http(s) URL of at most {_MAX_URL} characters")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise InvalidInput("url", "must be an http(s) URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url", "must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url", "must not carry credentials")
    if production and parts.scheme != "https":
        raise InvalidInput("url", "must use https in production")
    return value


class WebhookService:
    def __init__(
        self,
        authz: Authorizer,
        secrets: WebhookSecrets,
        clock: Callable[[], datetime],
        *,
        production: bool = False,
    ) -> None:
        self._authz = authz
        self.secrets = secrets
        self._clock = clock
        self._production = production

    def __repr__(self) -> str:
        return f"WebhookService(production={self._production})"

    def _may(self, session: Session, action: Action, purpose: str | None = None) -> None:
        """The caller's grant on segments for its purpose, and (for one webhook) that the
        webhook's purpose is the caller's."""
        self._authz.check_listing(session)
        if action is Action.WRITE:
            self._authz.check_writes(session, [_RESOURCE])
        else:
            self._authz.check_reads(session, _RESOURCE)
        ctx = access_of(session)
        if purpose is not None and ctx.actor.role != SYSTEM_ROLE and purpose != ctx.purpose:
            error = AccessDenied(ctx.actor.role, purpose, _RESOURCE, action)
            raise self._authz.denied(session, error)

    def create(
        self,
        session: Session,
        *,
        url: str,
        segment_ids: Sequence[uuid.UUID],
        purpose: str,
    ) -> NewWebhook:
        """Register a webhook; returns it with its secret (the only time it is shown)."""
        try:
            purpose_info(purpose)
        except (RegistryError, ValueError):
            raise InvalidInput("purpose", "is not a registered purpose") from None
        self._may(session, Action.WRITE, purpose)
        clean_url = checked_url(url, production=self._production)
        wanted = list(dict.fromkeys(segment_ids))
        if not 1 <= len(wanted) <= _MAX_SEGMENTS:
            raise InvalidInput("segmentIds", f"must name 1-{_MAX_SEGMENTS} segments")
        for segment_id in wanted:
            segment = session.get(SegmentRow, segment_id)
            if segment is None or segment.deleted_at is not None:
                raise SegmentNotFound(segment_id)
        ctx = access_of(session)
        row = WebhookRow(
            id=uuid.uuid4(),
            url=clean_url,
            purpose=purpose,
            segment_ids=[str(s) for s in wanted],
            secret_version=1,
            created_at=self._clock(),
            created_by=ctx.actor.subject,
        )
        session.add(row)
        session.flush()
        buffer_of(session).add(
            AuditAction.WEBHOOK_CHANGE,
            detail={"webhook": str(row.id), "op": "create", "segments": row.segment_ids},
        )
        return NewWebhook(_webhook(row), self.secrets.secret(row.id, row.secret_version))

    def list(self, session: Session) -> builtins.list[Webhook]:
        """The webhooks of the caller's purpose (every webhook for the operator)."""
        self._may(session, Action.READ)
        ctx = access_of(session)
        stmt = select(WebhookRow).order_by(WebhookRow.created_at, WebhookRow.id)
        if ctx.actor.role != SYSTEM_ROLE:
            stmt = stmt.where(WebhookRow.purpose == ctx.purpose)
        out = [_webhook(r) for r in session.scalars(stmt)]
        buffer_of(session).add(AuditAction.WEBHOOK_READ, detail={"listed": len(out)})
        return out

    def rotate_secret(self, session: Session, webhook_id: uuid.UUID) -> NewWebhook:
        """Give a webhook a new signing secret, returned this once (it is derived, never
        stored): every delivery sent from now on, retries included, is signed with it;
        the previous secret signs nothing more."""
        row = session.get(WebhookRow, webhook_id)
        if row is None:
            self._may(session, Action.WRITE)
            raise WebhookNotFound(webhook_id)
        self._may(session, Action.WRITE, row.purpose)
        row.secret_version += 1
        session.flush()
        buffer_of(session).add(
            AuditAction.WEBHOOK_CHANGE,
            detail={"webhook": str(row.id), "op": "rotate_secret", "version": row.secret_version},
        )
        return NewWebhook(_webhook(row), self.secrets.secret(row.id, row.secret_version))

    def disable(self, session: Session, webhook_id: uuid.UUID) -> Webhook:
        """Stop a webhook: nothing more is fanned out to it and its pending deliveries are
        skipped. Disabling twice changes nothing."""
        row = session.get(WebhookRow, webhook_id)
        if row is None:
            self._may(session, Action.WRITE)
            raise WebhookNotFound(webhook_id)
        self._may(session, Action.WRITE, row.purpose)
        skipped = 0
        if row.disabled_at is None:
            now = self._clock()
            row.disabled_at = now
            d = WebhookDeliveryRow
            result = session.execute(
                update(d)
                .where(d.webhook_id == webhook_id, d.state == DeliveryState.PENDING.value)
                .values(
                    state=DeliveryState.SKIPPED.value,
                    skipped_at=now,
                    last_error=SkipReason.WEBHOOK_DISABLED.value,
                )
                .execution_options(synchronize_session=False)
            )
            skipped = int(getattr(result, "rowcount", 0) or 0)
            session.flush()
        buffer_of(session).add(
            AuditAction.WEBHOOK_CHANGE,
            detail={"webhook": str(webhook_id), "op": "disable", "skipped": skipped},
        )
        return _webhook(row)
