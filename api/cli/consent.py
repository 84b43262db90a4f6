"""``cvault consent``: see, grant and withdraw a customer's consents from the operator's shell.

Every command runs as the operator (``system:consent``, purpose compliance) through
:class:`consent.ledger.ConsentLedger`, the ledger GraphQL calls: each change is one
append-only event with its signed receipt and its audit entry; each read is audited.
Withdrawing is the same single command as granting. Exit codes: 0 done, 1 refused or
invalid (a purpose that needs no consent, an expiry in the past), 2 a usage error (a
malformed id or date), 4 not found (no such customer, or an erased one).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import EXIT_USAGE, fail, operator_unit, out, parse_uuid
from vault.types import ConsentChannel, ConsentMethod, ConsentState

if TYPE_CHECKING:
    from consent import ConsentRecord

__all__ = ["consent_app"]

consent_app = typer.Typer(
    help="Consent: show where a customer's purposes stand, grant, withdraw.",
    no_args_is_help=True,
)

CustomerArg = Annotated[str, typer.Argument(help="The customer's id.")]
PurposeArg = Annotated[str, typer.Argument(help="A consent-based purpose, e.g. marketing_email.")]
ChannelOpt = Annotated[
    ConsentChannel, typer.Option("--channel", help="Where the customer made the change.")
]
MethodOpt = Annotated[ConsentMethod, typer.Option("--method", help="How the change was made.")]
NoticeOpt = Annotated[
    str | None,
    typer.Option(
        "--notice-version",
        help="The privacy notice the customer saw (default: the purpose's current one).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of text.")]


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat()


@consent_app.command("show")
def show(
    customer: CustomerArg,
    history: Annotated[
        bool, typer.Option("--history", help="Every consent event too, oldest first.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every consent-based purpose and where it stands for the customer; audited."""
    customer_id = parse_uuid(customer, "CUSTOMER")
    with operator_unit("consent", purpose="compliance") as (vault, session):
        from consent import Privacy

        ledger = Privacy.of(vault).ledger
        statuses = ledger.status(session, customer_id)
        events = ledger.history(session, customer_id) if history else []
    if as_json:
        doc: dict[str, Any] = {
            "customer": str(customer_id),
            "purposes": [
                {
                    "purpose": s.purpose.value,
                    "state": None if s.state is None else s.state.value,
                    "changed_at": None if s.changed_at is None else s.changed_at.isoformat(),
                    "expires_at": None if s.expires_at is None else s.expires_at.isoformat(),
                    "effective": s.effective,
                }
                for s in statuses
            ],
        }
        if history:
            doc["history"] = [_event(e) for e in events]
        typer.echo(json.dumps(doc, sort_keys=True))
        return
    out.print(f"customer {customer_id}", markup=False)
    out.print(f"{'purpose':<18}{'state':<11}{'effective':<11}{'changed':<34}expires", markup=False)
    for s in statuses:
        state = "never asked" if s.state is None else s.state.value
        line = (
            f"{s.purpose.value:<18}{state:<11}{'yes' if s.effective else 'no':<11}"
            f"{_when(s.changed_at):<34}{_when(s.expires_at)}"
        )
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for e in events:
        line = (
            f"{e.occurred_at.isoformat()}  {e.purpose.value}  {e.state.value}  "
            f"{e.source_channel.value}/{e.method.value}  notice {e.notice_version}  "
            f"by {e.actor}  event {e.id}"
        )
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _event(record: ConsentRecord) -> dict[str, Any]:
    return {
        "event": str(record.id),
        "customer": str(record.customer_id),
        "purpose": record.purpose.value,
        "state": record.state.value,
        "occurred_at": record.occurred_at.isoformat(),
        "source_channel": record.source_channel.value,
        "method": record.method.value,
        "notice_version": record.notice_version,
        "expires_at": None if record.expires_at is None else record.expires_at.isoformat(),
        "actor": record.actor,
        "receipt": record.receipt,
    }


def _change(
    customer: str,
    purpose: str,
    state: ConsentState,
    channel: ConsentChannel,
    method: ConsentMethod,
    notice: str | None,
    expires_at: str | None,
    as_json: bool,
) -> None:
    from consent import ConsentChange

    customer_id = parse_uuid(customer, "CUSTOMER")
    expires = None
    if expires_at is not None:
        try:
            expires = datetime.fromisoformat(expires_at)
        except ValueError:
            raise fail("--expires-at must be an ISO 8601 date and time", EXIT_USAGE) from None
    change = ConsentChange(
        purpose=purpose,
        state=state.value,
        source_channel=channel.value,
        notice_version=notice,
        method=method.value,
        expires_at=expires,
    )
    with operator_unit("consent", purpose="compliance") as (vault, session):
        from consent import Privacy

        record = Privacy.of(vault).ledger.record(session, customer_id, change)
    if as_json:
        typer.echo(json.dumps(_event(record), sort_keys=True, ensure_ascii=False))
        return
    out.print(
        f"{record.state.value} {record.purpose.value} for customer {record.customer_id} "
        f"(event {record.id}; its signed receipt: consent show --history --json)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@consent_app.command("grant")
def grant(
    customer: CustomerArg,
    purpose: PurposeArg,
    channel: ChannelOpt = ConsentChannel.API,
    method: MethodOpt = ConsentMethod.FORM,
    notice_version: NoticeOpt = None,
    expires_at: Annotated[
        str | None,
        typer.Option("--expires-at", help="ISO 8601 with a time zone: the consent lapses."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the customer granted PURPOSE; a signed receipt is kept."""
    _change(customer, purpose, ConsentState.GRANTED, channel, method, notice_version,
            expires_at, as_json)  # fmt: skip


@consent_app.command("withdraw")
def withdraw(
    customer: CustomerArg,
    purpose: PurposeArg,
    channel: ChannelOpt = ConsentChannel.API,
    method: MethodOpt = ConsentMethod.FORM,
    notice_version: NoticeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that the customer withdrew PURPOSE: it takes effect on the next request."""
    _change(customer, purpose, ConsentState.WITHDRAWN, channel, method, notice_version,
            None, as_json)  # fmt: skip
