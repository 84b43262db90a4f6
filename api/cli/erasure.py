"""``cvault erasure``: finish and repair erasures from the shell.

``purge`` deletes what erased customers still have waiting (interactions whose purge did
not run after the erasure's commit). ``reapply`` finds customers a restored database
backup brought back although the keyring's shred list names them (their data cannot be
read), erases each again to restore the tombstone, then purges. Both act as the
operator (``system:erasure``) and print ids and counts only.
"""

from __future__ import annotations

import typer

from api.cli.common import opened, out

__all__ = ["erasure_app"]

erasure_app = typer.Typer(
    help="Erasure: purge what erased customers left, re-erase after a restore.",
    no_args_is_help=True,
)


@erasure_app.command("purge")
def purge() -> None:
    """Delete the interactions erased customers still have (a purge that did not run)."""
    with opened() as vault:
        deleted = vault.erasure.purge_pending(vault.db)
    out.print(f"{deleted} interactions of erased customers deleted")


@erasure_app.command("reapply")
def reapply() -> None:
    """Erase again every customer a restored backup brought back (shredded, yet live)."""

    with opened() as vault:
        report = vault.reapply_erasures()
    for customer_id in report.erased:
        out.print(f"erased again: {customer_id}", markup=False, highlight=False)
    for customer_id in report.held:
        out.print(
            f"not erased again (a legal hold in the restored database): {customer_id}",
            markup=False, highlight=False,
        )  # fmt: skip
    out.print(f"{len(report.erased)} customers erased again, {report.purged} interactions purged")
