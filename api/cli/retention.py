"""``cvault retention``: the retention policy from the shell. Run it (delete expired
interactions, payloads, closed requests and tombstones, legal holds respected; audited),
or dry-run it, and show the policy in force with where each period comes from.

A run takes the retention job's run lock, as the server's scheduler does (daily by
default): while a server runs retention the command refuses (exit 1) rather than run
beside it. A dry run changes nothing and takes no lock.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import (
    EXIT_REJECTED,
    EXIT_USAGE,
    err,
    fail,
    load_settings,
    opened,
    out,
    progress,
)

__all__ = ["retention_app"]

retention_app = typer.Typer(help="Retention: delete what has expired.", no_args_is_help=True)


def _days(days: int | None) -> str:
    return "-" if days is None else "forever" if days == 0 else str(days)


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
) -> None:
    """Delete expired interactions, payloads, closed requests and tombstones; audited."""
    from rich.markup import escape

    from vault.privacy.retention import RetentionConfigError, RetentionOutcome
    from vault.scheduling import JobBusy, command_run
    from vault.types import JobName

    with opened() as vault:
        try:
            policy = vault.retention.policy()
        except RetentionConfigError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None
        try:
            with contextlib.ExitStack() as lock:
                if not dry_run:
                    lock.enter_context(command_run(vault.db, JobName.RETENTION))
                bar, advance = progress("retention", vault.retention.steps)
                with bar:
                    report = vault.retention.run(
                        vault.db, dry_run=dry_run, now=vault.clock(), policy=policy,
                        progress=advance,
                    )  # fmt: skip
        except JobBusy as exc:
            raise fail(str(exc), EXIT_REJECTED) from None
    done = "would delete" if dry_run else "deleted"
    out.print(f"policy: {policy.source}", markup=False, highlight=False, soft_wrap=True)
    table = Table("subject", "keep (days)", done, "held", "kept")
    for subject, days in report.subjects():
        gone = report.count(RetentionOutcome.DELETED, subject) + report.count(
            RetentionOutcome.DROPPED, subject
        )
        held = report.count(RetentionOutcome.HELD, subject)
        kept = report.count(RetentionOutcome.KEPT, subject)
        table.add_row(subject, _days(days), str(gone), str(held), str(kept))
    out.print(table)
    out.print("interaction_payload: payloads dropped, the interactions kept", style="dim")
    deleted = report.total(RetentionOutcome.DELETED)
    dropped = report.total(RetentionOutcome.DROPPED)
    held_all = report.total(RetentionOutcome.HELD)
    if dry_run:
        out.print(f"dry run, nothing changed: would delete {deleted} rows, drop {dropped} payloads")
    else:
        out.print(f"deleted {deleted} rows, dropped {dropped} payloads")
    out.print(f"{held_all} expired rows held by legal holds; audited as retention.run")
    if report.customers:  # pseudonymous ids, no PII: who the inactive_customers step erases
        erased = "would erase" if dry_run else "erased"
        out.print(f"inactive customers {erased} ({len(report.customers)}):")
        for customer_id in report.customers:
            out.print(f"  {customer_id}", markup=False, highlight=False)


@retention_app.command("show")
def retention_show() -> None:
    """Print the retention policy in force and where it comes from."""
    from rich.markup import escape

    from vault.privacy.retention import RetentionConfigError, load_policy, policy_path
    from vault.types import InteractionType

    settings = load_settings()
    try:
        policy = load_policy(policy_path(settings))
    except RetentionConfigError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    out.print(f"policy: {policy.source}", markup=False, highlight=False, soft_wrap=True)
    table = Table("subject", "keep (days)", "from")
    for kind in InteractionType:
        named = "interactions" if kind in policy.interactions else "interactions.default"
        table.add_row(kind.value, _days(policy.days_for(kind)), named)
    for category, days in policy.categories.items():
        table.add_row(category.value, _days(days), "categories")
    out.print(table)
    out.print("kept while younger than its period (occurred_at >= now - days)", style="dim")
