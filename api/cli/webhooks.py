"""``cvault webhooks``: register, disable and re-key webhooks, deliver segment events now,
list the registered webhooks.

``create`` and ``rotate-secret`` print the signing secret once (the vault derives it and
never stores it: it cannot be shown again, only rotated); ``disable`` stops deliveries.
They act as the operator (``system:webhooks``, purpose administration) through
:class:`vault.segments.webhooks.WebhookService`, as GraphQL's ``createWebhook`` and
``disableWebhook`` do; audited with ids only. Exit codes: 0 done, 1 invalid (a URL, a
purpose), 2 a usage error (a malformed id), 4 not found (a webhook, a segment).

``deliver`` runs what the server's ``webhook_delivery`` job runs every two seconds (fan-out
of the outbox, then every due delivery; one audit entry) and prints the counts. It takes
no lock: deliveries are claimed, so it may run beside a server's scheduler. ``list``
acts as the operator (``system:webhooks``, purpose administration) and prints ids,
purposes, segments and state, never a secret (the vault does not store one).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli.common import opened, operator_unit, out, parse_uuid

if TYPE_CHECKING:
    from vault.segments.webhooks import NewWebhook, Webhook

__all__ = ["webhooks_app"]

webhooks_app = typer.Typer(
    help="Webhooks: create, disable, rotate-secret, list; deliver segment events.",
    no_args_is_help=True,
)


@webhooks_app.command("deliver")
def deliver() -> None:
    """Fan outbox events out to webhooks and send every due delivery once."""
    with opened() as vault:
        report = vault.dispatcher.run_once(vault.db)
    table = Table("events", "fanned out", "attempted", "delivered", "retrying", "failed",
                  "skipped")  # fmt: skip
    table.add_row(*(str(v) for v in report.counts().values()))
    out.print(table)


@webhooks_app.command("list")
def list_webhooks() -> None:
    """Every registered webhook, one a line: id, purpose, state, segments, URL."""
    from vault.authorization.context import AccessContext

    with opened() as vault, vault.unit(AccessContext.system("webhooks")) as session:
        hooks = vault.webhooks.list(session)
    for hook in hooks:
        state = "enabled" if hook.disabled_at is None else "disabled"
        segments = ",".join(str(s) for s in hook.segment_ids)
        line = f"{hook.id}  {hook.purpose}  {state}  segments={segments}  {hook.url}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print(f"{len(hooks)} webhook(s)")


JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of text.")]
IdArg = Annotated[str, typer.Argument(help="The webhook's id.")]


def _document(hook: Webhook) -> dict[str, Any]:
    return {
        "id": str(hook.id),
        "url": hook.url,
        "purpose": hook.purpose,
        "segments": [str(s) for s in hook.segment_ids],
        "created_at": hook.created_at.isoformat(),
        "disabled_at": None if hook.disabled_at is None else hook.disabled_at.isoformat(),
    }


def _with_secret(new: NewWebhook, as_json: bool, what: str) -> None:
    if as_json:
        typer.echo(json.dumps({"webhook": _document(new.webhook), "secret": new.secret}))
        return
    out.print(f"webhook {new.webhook.id} {what}", markup=False, highlight=False)
    out.print(f"secret  {new.secret}", markup=False, highlight=False)
    out.print("        shown once: the vault cannot show it again (rotate-secret makes a new one)",
              markup=False, highlight=False)  # fmt: skip


@webhooks_app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="Where events are POSTed (https in production).")],
    segment: Annotated[
        list[str], typer.Option("--segment", help="A segment to follow (repeat for more).")
    ],
    purpose: Annotated[str, typer.Option("--purpose", help="The purpose the endpoint serves.")],
    as_json: JsonOpt = False,
) -> None:
    """Register an endpoint for enter/leave events of segments; prints its secret once."""
    ids = [parse_uuid(s, "--segment") for s in segment]
    with operator_unit("webhooks") as (vault, session):
        new = vault.webhooks.create(session, url=url, segment_ids=ids, purpose=purpose)
    _with_secret(new, as_json, "created")


@webhooks_app.command("disable")
def disable(webhook: IdArg, as_json: JsonOpt = False) -> None:
    """Stop deliveries to a webhook; its pending deliveries are skipped."""
    wanted = parse_uuid(webhook, "WEBHOOK")
    with operator_unit("webhooks") as (vault, session):
        hook = vault.webhooks.disable(session, wanted)
    if as_json:
        typer.echo(json.dumps(_document(hook)))
        return
    when = hook.disabled_at.isoformat() if hook.disabled_at is not None else "-"
    out.print(f"webhook {hook.id} disabled since {when}", markup=False, highlight=False)


@webhooks_app.command("rotate-secret")
def rotate_secret(webhook: IdArg, as_json: JsonOpt = False) -> None:
    """A new signing secret, printed once; deliveries from now on are signed with it."""
    wanted = parse_uuid(webhook, "WEBHOOK")
    with operator_unit("webhooks") as (vault, session):
        new = vault.webhooks.rotate_secret(session, wanted)
    _with_secret(new, as_json, "has a new secret")
