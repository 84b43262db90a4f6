"""``cvault customers``: look a customer up and merge duplicates from the operator's shell.

Every command runs as the operator (``system:customers``) through
:class:`vault.customers.service.CustomerService`, the service GraphQL calls: policy and
the consent gates apply, and every read of a customer is audited like a GraphQL read
(``show`` and ``find`` read for purpose ``support`` unless ``--purpose`` names another).
Errors name ids and rules, never a value: a lookup that finds nobody does not echo the
address it was given. Exit codes: 0 done, 1 refused (a purpose, a restriction, a merge
not confirmed), 2 a usage error (a malformed id, no or two search keys), 4 not found.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_REJECTED,
    EXIT_USAGE,
    fail,
    operator_unit,
    out,
    parse_uuid,
)

if TYPE_CHECKING:
    from vault.customers import Customer

__all__ = ["customer_document", "customers_app"]

customers_app = typer.Typer(
    help="Customers: show one, find by e-mail, phone or external id, merge duplicates.",
    no_args_is_help=True,
)

PurposeOpt = Annotated[
    str, typer.Option("--purpose", help="The purpose of the read (policy and consent apply).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document per customer.")]


def customer_document(customer: Customer) -> dict[str, Any]:
    """What ``--json`` prints of a customer: every field the read resolved, ids as text."""
    return {
        "id": str(customer.id),
        "status": customer.status.value,
        "version": customer.version,
        "email": customer.email,
        "phone": customer.phone,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "birth_date": customer.birth_date,
        "address": customer.address,
        "locale": customer.locale,
        "tier": customer.tier,
        "tags": list(customer.tags),
        "attributes": customer.attributes,
        "external_ids": [{"source": e.source, "id": e.external_id} for e in customer.external_ids],
        "created_at": customer.created_at.isoformat(),
        "updated_at": customer.updated_at.isoformat(),
        "resolutions": dict(customer.resolutions),
    }


def _print(customers: list[Customer], as_json: bool) -> None:
    if as_json:
        for customer in customers:
            doc = customer_document(customer)
            typer.echo(json.dumps(doc, ensure_ascii=False, sort_keys=True, default=str))
        return
    for n, customer in enumerate(customers):
        if n:
            out.print("", markup=False)
        doc = customer_document(customer)
        name = " ".join(v for v in (customer.first_name, customer.last_name) if v)
        rows: list[tuple[str, object]] = [
            ("customer", doc["id"]),
            ("status", doc["status"]),
            ("version", doc["version"]),
            ("name", name or None),
        ]
        rows += [(k, doc[k]) for k in ("email", "phone", "birth_date", "address", "locale")]
        rows += [("tier", doc["tier"]), ("tags", ", ".join(customer.tags) or None)]
        rows += [(f"attr {k}", v) for k, v in sorted(customer.attributes.items())]
        rows += [(f"ext {e.source}", e.external_id) for e in customer.external_ids]
        rows += [("created", doc["created_at"]), ("updated", doc["updated_at"])]
        for label, value in rows:
            shown = "-" if value is None else str(value)
            out.print(f"{label:<12}{shown}", markup=False, highlight=False, soft_wrap=True)


@customers_app.command("show")
def show(
    customer: Annotated[str, typer.Argument(help="The customer's id, or an e-mail address.")],
    purpose: PurposeOpt = "support",
    as_json: JsonOpt = False,
) -> None:
    """One customer by id or e-mail (a merged id shows the surviving record); audited."""
    by_email = "@" in customer
    wanted = None if by_email else parse_uuid(customer, "CUSTOMER (an id or an e-mail)")
    with operator_unit("customers", purpose=purpose) as (vault, session):
        if wanted is not None:
            found = [vault.customers.get(session, wanted)]
        else:
            found = vault.customers.find_by_email(session, customer)
    if not found:
        raise fail("no customer has this e-mail address", EXIT_NOT_FOUND)
    _print(found, as_json)


@customers_app.command("find")
def find(
    email: Annotated[str | None, typer.Option("--email", help="An e-mail address.")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="A phone number.")] = None,
    external_id: Annotated[
        str | None, typer.Option("--external-id", help="SOURCE:ID, e.g. shopify:8812.")
    ] = None,
    purpose: PurposeOpt = "support",
    as_json: JsonOpt = False,
) -> None:
    """Customers by one exact key (blind index or external id); exit 4 when none."""
    from vault.customers import ExternalId

    given = [n for n, v in (("--email", email), ("--phone", phone), ("--external-id", external_id))
             if v is not None]  # fmt: skip
    if len(given) != 1:
        raise fail("give exactly one of --email, --phone, --external-id", EXIT_USAGE)
    ref = None
    if external_id is not None:
        source, sep, ext = external_id.partition(":")
        if not (sep and source.strip() and ext.strip()):
            raise fail("--external-id must be SOURCE:ID", EXIT_USAGE)
        ref = ExternalId(source.strip(), ext.strip())
    with operator_unit("customers", purpose=purpose) as (vault, session):
        from vault.errors import CustomerNotFound

        service = vault.customers
        if email is not None:
            found = service.find_by_email(session, email)
        elif phone is not None:
            found = service.find_by_phone(session, phone)
        elif ref is not None:
            try:
                found = [service.find_by_external_id(session, ref)]
            except CustomerNotFound:
                found = []
        else:  # unreachable: exactly one key was given
            found = []
    if not found:
        raise fail(f"no customer matches this {given[0].removeprefix('--')}", EXIT_NOT_FOUND)
    _print(found, as_json)
    if not as_json:
        out.print(f"{len(found)} customer(s)", markup=False)


@customers_app.command("merge")
def merge(
    source: Annotated[str, typer.Argument(help="The duplicate's id: it is folded away.")],
    target: Annotated[str, typer.Argument(help="The id of the customer that stays.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The result as JSON.")] = False,
) -> None:
    """Fold SOURCE into TARGET: interactions and external ids move, TARGET's empty fields
    are filled, SOURCE becomes a redirect and its data key is destroyed. One transaction."""
    merge_id, keep_id = parse_uuid(source, "SOURCE"), parse_uuid(target, "TARGET")
    if merge_id == keep_id:
        raise fail("SOURCE and TARGET must differ", EXIT_USAGE)
    if not yes:
        question = f"Merge {merge_id} into {keep_id}? {merge_id} cannot be read afterwards"
        if not typer.confirm(question, default=False, err=True):
            raise fail("merge cancelled; nothing changed", EXIT_REJECTED)
    with operator_unit("customers") as (vault, session):
        result = vault.customers.merge(session, keep_id, merge_id)
    if as_json:
        doc = {
            "customer": str(result.customer.id),
            "merged": str(result.merged_id),
            "moved_interactions": result.moved_interactions,
            "filled_fields": list(result.filled_fields),
        }
        typer.echo(json.dumps(doc, sort_keys=True))
        return
    filled = ", ".join(result.filled_fields) or "none"
    out.print(
        f"merged {result.merged_id} into {result.customer.id}: "
        f"{result.moved_interactions} interaction(s) moved, fields filled: {filled}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
