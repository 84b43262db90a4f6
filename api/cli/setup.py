"""``cvault init | migrate | serve | demo`` and ``cvault db``: setting a vault up and
running it: the data directory, keyring and schema, the HTTP server, demo data, and the
PostgreSQL grants for the application role.
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from api.cli.common import EXIT_USAGE, err, fail, load_settings, opened, out, progress
from vault.errors import VaultError

__all__ = ["db_app", "demo", "init", "migrate", "serve"]

db_app = typer.Typer(help="Database set-up helpers.", no_args_is_help=True)


def init(
    key_provider: Annotated[
        str | None,
        typer.Option(
            "--key-provider",
            help="What holds the keys of a new keyring: file (the default) or pkcs11.",
        ),
    ] = None,
    pkcs11_module: Annotated[
        str | None,
        typer.Option(
            "--pkcs11-module", help="The PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)."
        ),
    ] = None,
    pkcs11_token: Annotated[
        str | None,
        typer.Option("--pkcs11-token", help="The token's label; its user PIN: CVAULT_PKCS11_PIN."),
    ] = None,
) -> None:
    """Create the data directory, the keyring (mode 0600) and the schema, if missing."""
    from vault.bootstrap import initialise
    from vault.crypto import CryptoError, KeyringSource

    settings = load_settings()
    source = None
    if key_provider == "pkcs11":
        if not (pkcs11_module and pkcs11_token):
            raise fail("--key-provider pkcs11 needs --pkcs11-module and --pkcs11-token", EXIT_USAGE)
        if settings.pkcs11_pin is None:
            raise fail("set the token's user PIN in CVAULT_PKCS11_PIN", EXIT_USAGE)
        source = KeyringSource("pkcs11", pkcs11_module, pkcs11_token)
    elif key_provider == "file":
        if pkcs11_module or pkcs11_token:
            raise fail(
                "--pkcs11-module and --pkcs11-token go with --key-provider pkcs11", EXIT_USAGE
            )
        source = KeyringSource("file")
    elif key_provider is not None:
        raise fail("--key-provider must be file or pkcs11", EXIT_USAGE)
    elif pkcs11_module or pkcs11_token:
        raise fail("--pkcs11-module and --pkcs11-token go with --key-provider pkcs11", EXIT_USAGE)
    try:
        report = initialise(settings, source=source)
    except (CryptoError, VaultError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    out.print(f"data directory  {settings.data_dir}")
    made = "created" if report.keyring_created else "kept"
    out.print(f"keyring         {settings.keyring_path} ({made})")
    if report.source.provider == "pkcs11":
        keys = "made in the token" if report.token_keys_made else "kept in the token"
        out.print(f"keys            PKCS#11 token {report.source.token!r} ({keys})")
    out.print(f"database        {settings.database_url.split('@')[-1]}")
    out.print(f"schema          {report.revision_before or 'empty'} -> {report.revision_after}")


def migrate() -> None:
    """Apply pending schema migrations (Alembic) to CVAULT_DATABASE_URL."""
    from vault.bootstrap import migrate as run_migrations
    from vault.storage.migrate import head_revision

    before, after = run_migrations(load_settings())
    state = "up to date" if before == after else f"{before or 'empty'} -> {after}"
    out.print(f"schema {state} (head {head_revision()})")


class HTTPServer(enum.StrEnum):
    """The HTTP server ``cvault serve`` runs the application in."""

    UVICORN = "uvicorn"
    GRANIAN = "granian"


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    server: Annotated[
        HTTPServer,
        typer.Option(help="HTTP server: granian (less CPU per request), or uvicorn."),
    ] = HTTPServer.GRANIAN,
) -> None:
    """Serve the vault over HTTP (granian by default, or uvicorn: docs/benchmarks.md);
    the scheduled jobs run inside (one process leads each: docs/operations.md)."""
    from api.multiprocess import metrics_folder

    settings = load_settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    base = f"http://{bind_host}:{bind_port}"
    out.print(f"customer-vault listening on {base}/")
    out.print(f"  GraphQL:  {base}/graphql  (GraphiQL in development mode)")
    out.print(f"  privacy:  {base}/privacy   (customers sign in with a one-time code)")
    if settings.smtp_url is not None:
        out.print("  codes:    sent through CVAULT_SMTP_URL")
    elif settings.uses_file_outbox:
        outbox = settings.outbox_dir.resolve()
        out.print(f"  codes:    {outbox}/  (development outbox: one file per sign-in message)")
    else:
        out.print("  codes:    no CVAULT_SMTP_URL set: privacy page sign-in is unavailable")
    out.print(f"  console:  {base}/console   (staff: a one-time link from")
    out.print(
        "            .venv/bin/cvault console link --role compliance_officer --sub officer-1)"
    )
    out.print(f"  health:   {base}/healthz   ready: {base}/readyz   metrics: {base}/metrics")
    out.print("  a token:  .venv/bin/cvault token issue --role support_agent --sub agent-1")
    out.print('  headers:  {"Authorization": "Bearer <token>", "X-Purpose": "support"}')
    # Every worker's metrics in one folder of this run: /metrics adds them up.
    with metrics_folder(settings.data_dir):
        if server is HTTPServer.GRANIAN:
            _granian(bind_host, bind_port, workers)
            return
        import uvicorn

        uvicorn.run(
            "api.app:create_app_from_env",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )


def _granian(host: str, port: int, workers: int) -> None:
    """The application in granian (Rust HTTP/1.1, ASGI with its lifespan), as uvicorn
    runs it: one event loop per worker process, no access log (the vault logs requests),
    forwarded headers trusted from FORWARDED_ALLOW_IPS (``api.serving``)."""
    try:
        from granian.constants import HTTPModes, Interfaces
        from granian.log import LogLevels
        from granian.server import Server
    except ImportError:
        out.print("granian is not installed: pip install granian, or --server uvicorn")
        raise typer.Exit(2) from None
    Server(
        "api.serving:create_app_for_granian",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        http=HTTPModes.http1,
        factory=True,
        log_level=LogLevels.warning,
        log_access=False,
    ).serve()


def demo(
    customers: Annotated[int, typer.Option(min=1, max=2_000_000, help="How many customers.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for a repeatable dataset.")] = 7,
    if_empty: Annotated[bool, typer.Option(help="Only when the vault holds no customer.")] = False,
) -> None:
    """Load a realistic multi-channel demo dataset (names in several scripts)."""
    from consent import Privacy
    from consent.demo import grant_demo_consents
    from vault.bootstrap import customer_count
    from vault.demo.service import DEMO_TABLES, load_demo

    settings = load_settings()
    if if_empty and customer_count(settings) > 0:
        out.print("vault already holds customers; demo data not loaded")
        return
    with opened() as vault:
        bar, advance = progress("demo customers", customers)
        with bar:
            summary = load_demo(vault, customers=customers, seed=seed, progress=advance)
        consents = grant_demo_consents(vault, Privacy.of(vault).ledger, seed=seed)
        vault.db.analyze(DEMO_TABLES)
    out.print(f"loaded {summary.customers} customers and {summary.interactions} interactions")
    out.print(f"{consents.granted} consents granted ({consents.withdrawn} later withdrawn)")


@db_app.command("grants")
def db_grants(
    role: Annotated[str, typer.Option(help="The application role.")] = "cvault_app",
    schema: Annotated[str, typer.Option(help="The vault's schema.")] = "public",
) -> None:
    """Print the GRANTs for the PostgreSQL application role (no UPDATE/DELETE on audit)."""
    from vault.storage.roles import app_role_grants

    try:
        statements = app_role_grants(role, schema)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    for statement in statements:
        typer.echo(statement + ";")
