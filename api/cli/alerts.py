"""``cvault alerts``: access anomaly alerts by hand. ``scan`` runs what the server's
``anomaly_scan`` job runs every minute (under the job's run lock: it refuses while a
server runs it), ``list`` shows the newest alerts and their delivery, ``secret`` prints
the secret the security endpoint verifies signatures with (docs/alerts.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import EXIT_REJECTED, fail, opened, out

__all__ = ["alerts_app"]

alerts_app = typer.Typer(help="Access anomaly alerts: scan, list.", no_args_is_help=True)


@alerts_app.command("scan")
def scan() -> None:
    """Scan the new audit entries for anomalies now; send alerts that are due."""
    from vault.scheduling import JobBusy, command_run
    from vault.types import JobName

    with opened() as vault:
        try:
            with command_run(vault.db, JobName.ANOMALY_SCAN):
                report = vault.alerts.run(vault.db)
        except JobBusy as exc:
            raise fail(str(exc), EXIT_REJECTED) from None
    out.print(f"scanned {report.scanned} audit entries, raised {len(report.raised)} alert(s)")
    for alert in report.raised:
        out.print(f"{alert.id}  {alert.kind}  {alert.principal}  count={alert.count}",
                  markup=False, highlight=False)  # fmt: skip
    if report.delivery is not None:
        d = report.delivery
        out.print(f"delivered {d.sent}, retrying {d.retrying}, given up {d.gave_up}")


@alerts_app.command("list")
def list_alerts(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
) -> None:
    """The newest alerts: kind, principal, hour, count over threshold, delivery."""
    with opened() as vault:
        alerts = vault.alerts.recent(vault.db, limit=limit)
    table = Table("raised", "kind", "principal", "hour (UTC)", "count", "threshold", "sent")
    for a in alerts:
        sent = "yes" if a.delivered_at is not None else f"no ({a.attempts} tries)"
        table.add_row(
            a.raised_at.isoformat(timespec="seconds"), a.kind.value, a.principal,
            a.hour.isoformat(timespec="minutes"), str(a.count), str(a.threshold), sent,
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(alerts)} alert(s)")


@alerts_app.command("secret")
def secret() -> None:
    """The secret CVAULT_SECURITY_WEBHOOK_URL verifies alert signatures with."""
    from vault.crypto.webhooks import WebhookSecrets

    with opened() as vault:
        value = WebhookSecrets.of(vault.keyring.provider).security_secret()
    out.print(value, markup=False, highlight=False)
