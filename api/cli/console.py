"""``cvault console``: the compliance console from the shell. ``link`` prints a one-time
sign-in link for development (5 minutes, single use), opening a console session acting as
a staff role with that role's purpose."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import EXIT_USAGE, err, opened

__all__ = ["console_app"]

console_app = typer.Typer(help="The compliance console (/console).", no_args_is_help=True)


@console_app.command("link")
def console_link(
    role: Annotated[str, typer.Option(help="compliance_officer or admin.")],
    sub: Annotated[str, typer.Option(help="Who signs in (recorded in the audit trail).")],
    base_url: Annotated[
        str, typer.Option(help="Where the vault is served.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Print a one-time console sign-in link (valid 5 minutes, works once)."""
    from vault.authorization.context import AccessContext
    from vault.errors import InvalidInput
    from vault.sign_in import STAFF_PURPOSES

    if role not in STAFF_PURPOSES:
        err.print(f"error: --role must be one of {', '.join(sorted(STAFF_PURPOSES))}")
        raise typer.Exit(EXIT_USAGE)
    with opened() as vault:
        try:
            with vault.unit(AccessContext.system("console-link")) as s:
                token = vault.page_sessions.issue_link(s, sub, role)
        except InvalidInput as exc:
            err.print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"{base_url.rstrip('/')}/console/link?t={token}")
