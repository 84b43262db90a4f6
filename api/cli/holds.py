"""``cvault holds``: place, release and list legal holds from the operator's shell.

A legal hold keeps a customer from being erased until it is released. Every command runs
as the operator (``system:holds``, purpose compliance) through
:class:`consent.dsr.desk.DsrDesk`, the desk GraphQL's ``placeLegalHold``,
``liftLegalHold`` and ``legalHolds`` call; each is audited (ids only; the reason is kept
with the hold, never in the audit trail). Exit codes: 0 done, 1 refused or invalid (an
empty reason, a hold released already), 2 a usage error (a malformed id), 4 not found.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import operator_unit, out, parse_uuid

if TYPE_CHECKING:
    from consent.dsr.requests import HoldView

__all__ = ["holds_app"]

holds_app = typer.Typer(
    help="Legal holds: a held customer cannot be erased until the hold is released.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of text.")]


def _document(hold: HoldView) -> dict[str, Any]:
    return {
        "hold": str(hold.id),
        "customer": str(hold.customer_id),
        "reason": hold.reason,
        "placed_by": hold.placed_by,
        "placed_at": hold.placed_at.isoformat(),
        "lifted_by": hold.lifted_by,
        "lifted_at": None if hold.lifted_at is None else hold.lifted_at.isoformat(),
        "active": hold.active,
    }


def _line(hold: HoldView) -> str:
    lifted = hold.lifted_at
    state = "active" if lifted is None else f"released {lifted.isoformat()}"
    return (
        f"{hold.id}  {state}  placed {hold.placed_at.isoformat()} by {hold.placed_by}  "
        f"{hold.reason}"
    )


def _print(holds: list[HoldView], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([_document(h) for h in holds], ensure_ascii=False, sort_keys=True))
        return
    for hold in holds:
        out.print(_line(hold), markup=False, highlight=False, soft_wrap=True)


@holds_app.command("add")
def add(
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (a case or matter reference).")],
    as_json: JsonOpt = False,
) -> None:
    """Place a legal hold: the customer cannot be erased until it is released."""
    customer_id = parse_uuid(customer, "CUSTOMER")
    with operator_unit("holds", purpose="compliance") as (vault, session):
        from consent import Privacy

        hold = Privacy.of(vault).desk.place_hold(session, customer_id, reason)
    _print([hold], as_json)


@holds_app.command("release")
def release(
    hold: Annotated[str, typer.Argument(help="The hold's id (from holds add or holds list).")],
    as_json: JsonOpt = False,
) -> None:
    """Release a legal hold; erasure is possible again once no other hold is active."""
    hold_id = parse_uuid(hold, "HOLD")
    with operator_unit("holds", purpose="compliance") as (vault, session):
        from consent import Privacy

        lifted = Privacy.of(vault).desk.lift_hold(session, hold_id)
    _print([lifted], as_json)


@holds_app.command("list")
def list_holds(
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    as_json: JsonOpt = False,
) -> None:
    """Every legal hold of the customer, active and released, oldest first."""
    customer_id = parse_uuid(customer, "CUSTOMER")
    with operator_unit("holds", purpose="compliance") as (vault, session):
        from consent import Privacy

        holds = Privacy.of(vault).desk.holds(session, customer_id)
    _print(holds, as_json)
    if not as_json:
        active = sum(h.active for h in holds)
        out.print(f"{len(holds)} hold(s), {active} active", markup=False)
