"""``cvault attributes``: the custom attributes declared in force, and the stored ones they
do not cover. ``show`` lists the declarations (and their file), the stored names nobody
declared and the names declared PII whose values are still in clear, as names and counts;
``seal`` encrypts those clear values under each customer's data key (audited). Both act as
the operator (``system:attributes``) and never print a value.
"""

from __future__ import annotations

import typer

from api.cli.common import opened, out

__all__ = ["attributes_app"]

attributes_app = typer.Typer(
    help="Custom attributes: the declarations in force, undeclared and unsealed names.",
    no_args_is_help=True,
)


@attributes_app.command("show")
def show() -> None:
    """The declared attributes, then the stored names they do not cover (with counts)."""
    from rich.table import Table

    from vault.authorization.context import AccessContext
    from vault.customers.attribute_upkeep import census

    with opened() as vault:
        registry = vault.customers.attributes
        with vault.unit(AccessContext.system("attributes")) as session:
            found = census(session, registry)
    out.print(f"declared in: {registry.source}", markup=False, highlight=False, soft_wrap=True)
    table = Table("name", "type", "pii", "description")
    for info in registry.values():
        table.add_row(info.name, info.type.value, "yes" if info.pii else "no", info.description)
    out.print(table)
    for title, counts in (
        ("undeclared (shown only to the data subject and administrators)", found.undeclared),
        ("declared PII but still in clear (run: cvault attributes seal)", found.clear_pii),
    ):
        if counts:
            out.print(f"{title}:", markup=False, highlight=False)
            for name, count in counts.items():
                out.print(f"  {name}: {count} customers", markup=False, highlight=False)


@attributes_app.command("seal")
def seal() -> None:
    """Encrypt the clear values of attributes declared PII (stored before the declaration)."""
    from vault.authorization.context import AccessContext
    from vault.customers.attribute_upkeep import seal_clear_pii

    with opened() as vault, vault.unit(AccessContext.system("attributes")) as session:
        changed = seal_clear_pii(session, vault.customers.attributes, vault.keys, vault.authz)
    out.print(f"{changed} customers had PII attributes in clear; sealed")
