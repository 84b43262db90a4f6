"""``cvault keys`` and ``cvault token``: the vault's keys from the shell. Inspect and
rotate the key-encryption keys (data keys are re-wrapped, values stay as they are), and
mint development bearer tokens with the local signing key.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import EXIT_USAGE, fail, load_settings, opened, out, progress
from vault.errors import InvalidInput, VaultError

__all__ = ["keys_app", "token_app"]

keys_app = typer.Typer(help="Key-encryption keys: rotate and inspect.", no_args_is_help=True)
token_app = typer.Typer(help="Development tokens signed with the vault's local key.")


@keys_app.command("status")
def keys_status() -> None:
    """Show key-encryption key versions and how many data keys each wraps."""
    with opened() as vault, vault.db.transaction() as session:
        status = vault.keys.status(session)
    table = Table("kek version", "state", "data keys")
    for version in sorted(set(status.keyring_versions) | set(status.data_keys_by_kek_version)):
        state = "current" if version == status.current_kek_version else "old"
        if version not in status.keyring_versions:
            state = "MISSING from keyring"
        table.add_row(str(version), state, str(status.data_keys_by_kek_version.get(version, 0)))
    out.print(table)
    out.print(f"destroyed data keys (crypto-shredded): {status.destroyed_data_keys}")
    out.print(f"pending re-wrap: {status.pending_rewrap}")
    out.print(f"blind index bits: {status.blind_index_bits}")


@keys_app.command("rotate")
def keys_rotate(
    retire: Annotated[
        bool, typer.Option("--retire-old", help="Drop old versions once nothing uses them.")
    ] = False,
    rewrap_only: Annotated[
        bool, typer.Option("--rewrap-only", help="Finish an interrupted rotation.")
    ] = False,
) -> None:
    """Add a key-encryption key, re-wrap every data key under it (values stay as they are)."""
    from vault.authorization.context import AccessContext

    with opened() as vault:
        with vault.db.transaction() as session:
            status = vault.keys.status(session)
        # A new version leaves every live data key to re-wrap; --rewrap-only the rest.
        total = (
            status.pending_rewrap if rewrap_only else sum(status.data_keys_by_kek_version.values())
        )
        bar, advance = progress("re-wrapping data keys", total)
        with bar:
            report = vault.rotate_keys(
                AccessContext.system("keys-rotate"),
                rewrap_only=rewrap_only,
                retire_old=retire,
                progress=advance,
            )
    if report.new_version is not None:
        out.print(f"key-encryption key version {report.new_version} is now current")
    out.print(f"re-wrapped {report.rewrapped} data keys")
    for old in report.retired:
        out.print(f"retired key-encryption key version {old}")


@token_app.command("issue")
def token_issue(
    role: Annotated[str, typer.Option(help="support_agent, marketing, analyst, ...")],
    sub: Annotated[str, typer.Option(help="The subject (who the token is for).")],
    customer_id: Annotated[
        str | None, typer.Option(help="For data_subject tokens: the customer's id.")
    ] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 30m, 1h, 7d.")] = "1h",
) -> None:
    """Mint a bearer token with the local signing key (development and tests)."""
    from datetime import timedelta

    from api.auth import LocalTokenIssuer
    from policies import Role

    settings = load_settings()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not (ttl[:-1].isdigit() and ttl[-1:] in units):
        raise fail("--ttl must look like 30m, 1h or 7d", EXIT_USAGE)
    if role not in {r.value for r in Role}:
        raise fail(f"--role must be one of: {', '.join(r.value for r in Role)}", EXIT_USAGE)
    try:
        cid = None if customer_id is None else uuid.UUID(customer_id)
    except ValueError:
        raise fail("--customer-id is not a customer id (a UUID)", EXIT_USAGE) from None
    try:
        issuer = LocalTokenIssuer.load_or_create(
            settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
        )
        token = issuer.issue(
            sub, Role(role), cid, ttl=timedelta(seconds=int(ttl[:-1]) * units[ttl[-1]])
        )
    except InvalidInput as exc:
        raise fail(f"--{exc.field.replace('_', '-')}: {exc.rule}", EXIT_USAGE) from None
    except (ValueError, VaultError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    typer.echo(token)
