"""``cvault documents``: the trusted GraphQL documents clients may send by id.

``register FILE`` reads a persisted-document manifest (Relay's persisted queries, GraphQL
Code Generator's ``persisted-documents.json``, Apollo's persisted query manifest), checks
every id against its document and every document against the schema of this release,
and stores them all, or, if any entry is bad, none (exit 1, each bad entry named).
Registering again what is already trusted changes nothing, so a deploy can run it every
time. ``list`` shows the trusted documents (``--revoked``: those revoked too), ``show
ID`` one document with its text, ``revoke ID`` stops trusting one. Each change is
audited and recorded with who (``--by``, default the login name) and when; servers pick
changes up within seconds, and a new document at once on first use.
"""

from __future__ import annotations

import getpass
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import EXIT_REJECTED, EXIT_USAGE, err, fail, opened, out

if TYPE_CHECKING:
    from vault.authorization.context import AccessContext
    from vault.documents import TrustedDocument

__all__ = ["documents_app"]

documents_app = typer.Typer(
    help="Trusted GraphQL documents: register a manifest, list, show, revoke.",
    no_args_is_help=True,
)
_NAME = re.compile(r"[^A-Za-z0-9_.@+-]")
By = Annotated[
    str | None,
    typer.Option("--by", help="Who does this, as recorded (default: your login name)."),
]


def _plain(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _context(by: str | None) -> AccessContext:
    """The operator as the actor: ``operator:<name>`` with the system's rights."""
    from vault.authorization.context import AccessContext, Actor

    try:
        name = by if by is not None else getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        name = "unknown"
    cleaned = _NAME.sub("_", name.strip())[:100]
    if not cleaned:
        raise fail("--by must name someone", EXIT_USAGE)
    return AccessContext(Actor(subject=f"operator:{cleaned}", role="system"), "administration")


def _refused(problems: list[str]) -> typer.Exit:
    err.print("error: manifest refused, nothing stored:", markup=False, highlight=False)
    for problem in problems:
        err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_REJECTED)


@documents_app.command("register")
def register(file: Path, by: By = None) -> None:
    """Trust every document of the manifest FILE, or none if any entry is bad."""
    from api.graphql.schema import build_schema
    from api.graphql.trusted import schema_checker
    from vault.documents import ManifestError, parse_manifest

    try:
        raw = file.read_bytes()
    except OSError:
        raise fail(f"{file} cannot be read", EXIT_USAGE) from None
    try:
        manifest = parse_manifest(raw)
    except ManifestError as exc:
        raise _refused(exc.problems) from None
    check = schema_checker(build_schema()._schema)
    context = _context(by)
    with opened() as vault:
        try:
            with vault.unit(context) as session:
                done = vault.documents.register(session, manifest, check)
        except ManifestError as exc:
            raise _refused(exc.problems) from None
    kind = "Apollo persisted query manifest" if done.format == "apollo" else "id -> document map"
    _plain(
        f"registered {len(done.registered)} documents, {len(done.unchanged)} already trusted "
        f"({kind}, manifest {done.manifest})"
    )
    for sha256 in done.registered:
        _plain(f"  + sha256:{sha256}")


def _line(document: TrustedDocument) -> str:
    state = "trusted" if document.active else "revoked"
    name = document.operation_name or "-"
    aliases = f"  also {', '.join(document.aliases)}" if document.aliases else ""
    return (
        f"sha256:{document.sha256}  {state}  {document.operation_type}  {name}  "
        f"{document.registered_at.isoformat()}  {document.registered_by}{aliases}"
    )


@documents_app.command("list")
def list_documents(
    revoked: Annotated[bool, typer.Option(help="Revoked documents too.")] = False,
) -> None:
    """Trusted documents, newest first: id, state, type, operation, registered when, by."""
    with opened() as vault, vault.unit(_context("list")) as session:
        documents = vault.documents.listing(session, revoked=revoked)
    if not documents:
        _plain("no trusted document")
    for document in documents:
        _plain(_line(document))


def _found(given: str, by: str | None, *, revoke: bool) -> TrustedDocument:
    from vault.errors import VaultError

    with opened() as vault:
        try:
            with vault.unit(_context(by)) as session:
                if revoke:
                    return vault.documents.revoke(session, given)
                return vault.documents.show(session, given)
        except VaultError as exc:
            raise fail(str(exc), EXIT_REJECTED) from None


@documents_app.command("show")
def show(document_id: str) -> None:
    """One stored document (by sha256:<hex>, its hex or its MD5/SHA-1 id) and its text."""
    document = _found(document_id, "show", revoke=False)
    _plain(_line(document))
    if document.revoked_at is not None:
        _plain(f"revoked {document.revoked_at.isoformat()} by {document.revoked_by}")
    _plain("")
    _plain(document.body)


@documents_app.command("revoke")
def revoke(document_id: str, by: By = None) -> None:
    """Stop trusting a document; servers refuse it within seconds."""
    document = _found(document_id, by, revoke=True)
    _plain(f"revoked sha256:{document.sha256}; servers stop running it within seconds")
