"""``cvault``: the operator's command line. Commands call vault services; no SQL here.

This package assembles the typer app from one module per command group; every one of
them imports only :mod:`api.cli.common` (consoles, exit codes, the opened vault, the
operator's unit of work), never this package or each other (``segments`` also imports
:mod:`api.cli.rule_lines`, a text helper that puts line numbers on rule errors).
"""

from __future__ import annotations

import sys

import typer

from api.cli import identity, setup
from api.cli.alerts import alerts_app
from api.cli.attributes import attributes_app
from api.cli.audit import audit_app
from api.cli.backup import backup, restore
from api.cli.common import EXIT_UNAVAILABLE, err
from api.cli.consent import consent_app
from api.cli.console import console_app
from api.cli.customers import customers_app
from api.cli.data import import_app
from api.cli.documents import documents_app
from api.cli.dsr import dsr_app
from api.cli.erasure import erasure_app
from api.cli.holds import holds_app
from api.cli.keys import keys_app, token_app
from api.cli.policy import policy_app
from api.cli.receipts import consent_verify_receipt, dsr_verify_receipt
from api.cli.retention import retention_app
from api.cli.schema import schema_app
from api.cli.segments import segments_app
from api.cli.webhooks import webhooks_app

__all__ = ["app", "main"]

app = typer.Typer(help="customer-vault: a privacy-first customer data vault.", no_args_is_help=True)
for command in (setup.init, setup.migrate, setup.serve, setup.demo):
    app.command()(command)
app.command()(backup)
app.command()(restore)
app.add_typer(keys_app, name="keys")
app.add_typer(import_app, name="import")
app.add_typer(audit_app, name="audit")
app.add_typer(setup.db_app, name="db")
dsr_app.command("verify-receipt")(dsr_verify_receipt)
app.add_typer(dsr_app, name="dsr")
app.add_typer(erasure_app, name="erasure")
app.add_typer(segments_app, name="segments")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(token_app, name="token")
app.add_typer(retention_app, name="retention")
app.add_typer(policy_app, name="policy")
app.add_typer(attributes_app, name="attributes")
app.add_typer(console_app, name="console")
app.add_typer(documents_app, name="documents")
app.add_typer(schema_app, name="schema")
app.add_typer(alerts_app, name="alerts")
customers_app.command("duplicates")(identity.duplicates)
customers_app.command("reindex")(identity.reindex)
app.add_typer(customers_app, name="customers")
consent_app.command("verify-receipt")(consent_verify_receipt)
app.add_typer(consent_app, name="consent")
app.add_typer(holds_app, name="holds")


def main() -> None:
    """The ``cvault`` entry point: run the app; Ctrl-C exits 130 with a short note; a
    database that cannot be reached or written exits 3 with one line naming the reason."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        from vault.storage.db import storage_failure

        failure = storage_failure(exc)
        if failure is None:
            raise
        err.print(f"error: {failure}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_UNAVAILABLE)
