"""``cvault webhooks``: deliver segment events now, list the registered webhooks.

``deliver`` runs what the server's ``webhook_delivery`` job runs every two seconds (fan-out
of the outbox, then every due delivery; one audit entry) and prints the counts. It takes
no lock: deliveries are claimed, so it may run beside a server's scheduler. ``list``
acts as the operator (``system:webhooks``, purpose administration) and prints ids,
purposes, segments and state, never a secret (the vault does not store one).
"""

from __future__ import annotations

import typer
from rich.table import Table

from api.cli.common import opened, out

__all__ = ["webhooks_app"]

webhooks_app = typer.Typer(
    help="Webhooks: deliver segment enter/leave events, list endpoints.",
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
