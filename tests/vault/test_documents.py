"""Trusted documents in the vault: manifests of every shape read and checked, and the
store registering all or nothing, revoking, listing and auditing (SQLite and PostgreSQL).

The checker here is the gateway's own (the real schema), as `cvault documents register`
passes it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from api.graphql.schema import build_schema
from api.graphql.trusted import schema_checker
from vault.authorization.context import AccessContext, Actor
from vault.documents import (
    DocumentNotTrusted,
    ManifestError,
    document_sha256,
    parse_document_id,
    parse_manifest,
)
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, TrustedDocumentEventRow, TrustedDocumentRow

CUSTOMERS = "query Customers { customers(first: 5) { edges { node { id firstName } } } }"
CREATE = "mutation Create($input: CustomerInput!) { createCustomer(input: $input) { id } }"
INVALID = "query Typo { customers { edges { node { emial } } } }"
OPERATOR = AccessContext(Actor("operator:alice", "system"), "administration")
CHECK = schema_checker(build_schema()._schema)


def sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def sha1(body: str) -> str:
    return hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()


def raw(data: Any) -> bytes:
    return json.dumps(data).encode()


def apollo(*operations: dict[str, str]) -> bytes:
    return raw(
        {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
    )


def apollo_op(body: str, name: str, kind: str, id_: str | None = None) -> dict[str, str]:
    return {"id": id_ or sha256(body), "body": body, "name": name, "type": kind}


# -- manifests (no database) --------------------------------------------------------------


def test_relay_md5_map_keeps_the_md5_as_alias_beside_our_sha256() -> None:
    """Relay's persisted queries (MD5 ids) are read with our SHA-256 of each text and the
    MD5 kept as the id clients send."""
    manifest = parse_manifest(raw({md5(CUSTOMERS): CUSTOMERS}))
    [entry] = manifest.entries
    assert (manifest.format, entry.sha256, entry.alias) == (
        "map",
        sha256(CUSTOMERS),
        md5(CUSTOMERS),
    )


def test_client_preset_map_takes_prefixed_bare_and_sha1_ids() -> None:
    """The client preset's persisted-documents.json: `sha256:<hex>`, bare SHA-256 hex and
    the older SHA-1 default are all accepted; only SHA-1 needs an alias."""
    manifest = parse_manifest(
        raw(
            {
                f"sha256:{sha256(CUSTOMERS)}": CUSTOMERS,
                sha256(CREATE): CREATE,
                sha1("{ x }"): "{ x }",
            }
        )
    )
    assert [(e.sha256, e.alias) for e in manifest.entries] == [
        (sha256(CUSTOMERS), None),
        (sha256(CREATE), None),
        (sha256("{ x }"), sha1("{ x }")),
    ]


def test_apollo_manifest_is_read_with_names_and_types() -> None:
    """Apollo's persisted query manifest: each operation's id, body, name and type."""
    manifest = parse_manifest(apollo(apollo_op(CUSTOMERS, "Customers", "query")))
    [entry] = manifest.entries
    assert (manifest.format, entry.sha256, entry.name, entry.kind) == (
        "apollo",
        sha256(CUSTOMERS),
        "Customers",
        "query",
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({sha256("other"): CUSTOMERS}, f"entry '{sha256('other')}': the id is not the sha256"),
        ({md5("other"): CUSTOMERS}, f"entry '{md5('other')}': the id is not the md5"),
        ({"getCustomers": CUSTOMERS}, "entry 'getCustomers': the id is neither"),
        ({f"sha256:{md5(CUSTOMERS)}": CUSTOMERS}, "the id is neither"),
        ({sha256(CUSTOMERS): 42}, "the document must be a non-empty string"),
        ({}, "the manifest holds no document"),
        ([CUSTOMERS], "expected a JSON object"),
    ],
)
def test_a_bad_map_entry_refuses_the_manifest_naming_it(data: Any, expected: str) -> None:
    """An id that is not the hash of its text, or not a hash at all, refuses the manifest
    with a message naming the entry (never quoting the document)."""
    with pytest.raises(ManifestError) as refused:
        parse_manifest(raw(data))
    assert expected in str(refused.value)
    assert "firstName" not in str(refused.value)


def test_a_bad_apollo_operation_is_named_by_position_id_and_name() -> None:
    """Apollo: a wrong id names the operation's position, id and name; a wrong version or
    format refuses the file."""
    wrong = apollo_op(CUSTOMERS, "Customers", "query", id_=sha256("x"))
    with pytest.raises(ManifestError) as refused:
        parse_manifest(apollo(apollo_op(CREATE, "Create", "mutation"), wrong))
    version = raw({"format": "apollo-persisted-query-manifest", "version": 2, "operations": []})
    with pytest.raises(ManifestError) as unsupported:
        parse_manifest(version)
    assert refused.value.problems == [
        f"operation 1 '{sha256('x')}' (Customers): the id is not the sha256 of its document's text"
    ]
    assert "version '2'" in str(unsupported.value)


def test_not_json_and_not_utf8_are_refused() -> None:
    """A file that is not JSON names the line; bytes that are not UTF-8 are refused."""
    with pytest.raises(ManifestError, match="not JSON"):
        parse_manifest(b'{\n"a": }')
    with pytest.raises(ManifestError, match="not UTF-8"):
        parse_manifest(b"\xff\xfe")


def test_document_ids_parse_as_sha256_or_alias() -> None:
    """sha256:<hex> and bare 64 hex are our ids; 32 or 40 hex are aliases; else none."""
    digest = sha256(CUSTOMERS)
    assert parse_document_id(f"sha256:{digest.upper()}") == ("sha256", digest)
    assert parse_document_id(digest) == ("sha256", digest)
    assert parse_document_id(md5(CUSTOMERS)) == ("alias", md5(CUSTOMERS))
    assert parse_document_id("x-custom:abc") is None
    assert parse_document_id(f"sha256:{md5(CUSTOMERS)}") is None


def test_names_in_any_script_round_trip_in_a_document() -> None:
    """A document whose text holds Persian, Thai and Chinese keeps its exact bytes (the
    SHA-256 is over its UTF-8 text)."""
    body = "# مهسا สมชาย 王芳\nquery Names { customers(first: 1) { edges { cursor } } }"
    [entry] = parse_manifest(raw({sha256(body): body})).entries
    assert (entry.body, entry.sha256) == (body, document_sha256(body))


# -- the store (SQLite and PostgreSQL) -----------------------------------------------------


def _register(vault: Vault, data: bytes) -> tuple[list[str], list[str]]:
    with vault.unit(OPERATOR) as s:
        done = vault.documents.register(s, parse_manifest(data), CHECK)
    return done.registered, done.unchanged


def _count(vault: Vault, row: type[Any]) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(row)) or 0)


def _audit(vault: Vault) -> list[dict[str, Any]]:
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical)
            .where(AuditEntryRow.action == "documents.change")
            .order_by(AuditEntryRow.id)
        ).all()
    return [json.loads(r) for r in rows]


def test_register_stores_every_format_and_is_idempotent(vault: Vault) -> None:
    """Each manifest shape registers its documents once; registering again changes
    nothing; the same text under an MD5 and a SHA-256 is one document with an alias."""
    first = _register(vault, raw({md5(CUSTOMERS): CUSTOMERS, f"sha256:{sha256(CREATE)}": CREATE}))
    again = _register(vault, apollo(apollo_op(CUSTOMERS, "Customers", "query")))
    with vault.unit(OPERATOR) as s:
        listed = vault.documents.listing(s)
        by_alias = vault.documents.show(s, md5(CUSTOMERS))
    assert first == ([sha256(CUSTOMERS), sha256(CREATE)], [])
    assert again == ([], [sha256(CUSTOMERS)])
    assert {(d.sha256, d.operation_type, d.operation_name, d.active) for d in listed} == {
        (sha256(CUSTOMERS), "query", "Customers", True),
        (sha256(CREATE), "mutation", "Create", True),
    }
    assert (by_alias.sha256, by_alias.aliases, by_alias.registered_by) == (
        sha256(CUSTOMERS),
        (md5(CUSTOMERS),),
        "operator:alice",
    )
    assert (_count(vault, TrustedDocumentRow), _count(vault, TrustedDocumentEventRow)) == (2, 2)


def test_an_invalid_document_refuses_the_whole_manifest(vault: Vault) -> None:
    """A document the schema refuses (or whose stated type is wrong) refuses the manifest,
    naming each bad entry; nothing of it is stored, not even the good entries."""
    with pytest.raises(ManifestError) as refused:
        _register(
            vault,
            apollo(
                apollo_op(CUSTOMERS, "Customers", "query"),
                apollo_op(INVALID, "Typo", "query"),
                apollo_op(CREATE, "Create", "query"),
            ),
        )
    assert refused.value.problems == [
        f"entry operation 1 '{sha256(INVALID)}' (Typo): GRAPHQL_VALIDATION_FAILED: Cannot "
        "query field 'emial' on type 'Customer'.",
        f"entry operation 2 '{sha256(CREATE)}' (Create): its type says query, the document "
        "holds a mutation",
    ]
    assert (_count(vault, TrustedDocumentRow), _count(vault, TrustedDocumentEventRow)) == (0, 0)
    assert _audit(vault) == []


def test_a_document_past_the_limits_is_refused(vault: Vault) -> None:
    """A document past the gateway's limits (here its cost) is refused at registration,
    not at its first request."""
    nested = "segments { members { edges { node { %s } } } }"
    deep = "query Deep { customers { edges { node { %s } } } }" % (nested % (nested % "id"))
    with pytest.raises(ManifestError, match="QUERY_TOO_COMPLEX: the query would cost more"):
        _register(vault, raw({sha256(deep): deep}))


def test_an_alias_may_not_name_two_documents(vault: Vault) -> None:
    """An MD5 id already registered for one text is refused for another (a collision or a
    mistake): the manifest is refused."""
    _register(vault, raw({md5(CUSTOMERS): CUSTOMERS}))
    forged = parse_manifest(raw({md5(CREATE): CREATE}))
    entry = forged.entries[0]
    colliding = type(forged)(
        forged.format, (type(entry)(entry.label, entry.sha256, entry.body, alias=md5(CUSTOMERS)),)
    )
    with (
        pytest.raises(ManifestError, match="already names another stored document"),
        vault.unit(OPERATOR) as s,
    ):
        vault.documents.register(s, colliding, CHECK)


def test_revoke_then_register_again(vault: Vault) -> None:
    """Revoking stops trusting a document (its snapshot drops it); revoking twice is
    refused; registering again trusts it anew. The history stays in the events."""
    _register(vault, raw({md5(CUSTOMERS): CUSTOMERS}))
    with vault.unit(OPERATOR) as s:
        revoked = vault.documents.revoke(s, f"sha256:{sha256(CUSTOMERS)}")
    after_revoke = vault.documents.snapshot(vault.db)
    with pytest.raises(DocumentNotTrusted, match="already revoked"), vault.unit(OPERATOR) as s:
        vault.documents.revoke(s, md5(CUSTOMERS))
    again = _register(vault, raw({md5(CUSTOMERS): CUSTOMERS}))
    restored = vault.documents.snapshot(vault.db)
    assert (revoked.active, revoked.revoked_by) == (False, "operator:alice")
    assert (after_revoke.documents, after_revoke.aliases) == ({}, {})
    assert again == ([sha256(CUSTOMERS)], [])
    assert restored.documents == {sha256(CUSTOMERS): CUSTOMERS}
    assert restored.aliases == {md5(CUSTOMERS): sha256(CUSTOMERS)}
    assert restored.mark == 3 > after_revoke.mark


def test_register_and_revoke_are_audited_with_who_and_no_text(vault: Vault) -> None:
    """One audit entry per registration (format, counts, manifest digest) and per
    revocation (the document's hash), by the operator; no document text."""
    manifest = parse_manifest(raw({md5(CUSTOMERS): CUSTOMERS}))
    _register(vault, raw({md5(CUSTOMERS): CUSTOMERS}))
    with vault.unit(OPERATOR) as s:
        vault.documents.revoke(s, sha256(CUSTOMERS))
    entries = _audit(vault)
    assert [(e["actor"], e["role"], e["detail"]) for e in entries] == [
        (
            "operator:alice",
            "system",
            {"step": "register", "format": "map", "manifest": manifest.digest,
             "registered": 1, "unchanged": 0},
        ),
        ("operator:alice", "system", {"step": "revoke", "document": sha256(CUSTOMERS)}),
    ]  # fmt: skip
    assert "firstName" not in json.dumps(entries)


def test_only_administrators_register(vault: Vault) -> None:
    """A support agent cannot register documents; an admin needs the administration
    purpose. The refusal is audited."""
    from policies import AccessDenied  # noqa: PLC0415

    agent = AccessContext(Actor("agent-1", "support_agent"), "support")
    with pytest.raises(AccessDenied), vault.unit(agent) as s:
        vault.documents.register(s, parse_manifest(raw({sha256(CREATE): CREATE})), CHECK)
    assert _count(vault, TrustedDocumentRow) == 0


def test_the_tables_are_append_only(vault: Vault) -> None:
    """The database refuses UPDATE and DELETE on both tables: a revocation is an event."""
    _register(vault, raw({sha256(CREATE): CREATE}))
    for statement in (
        "UPDATE trusted_documents SET body = 'query { x }'",
        "DELETE FROM trusted_document_events",
    ):
        with pytest.raises(DBAPIError), vault.db.engine.begin() as conn:
            conn.execute(text(statement))
    assert _count(vault, TrustedDocumentEventRow) == 1


def test_no_pii_in_a_document_reaches_a_refusal_or_the_audit(vault: Vault) -> None:
    """A document may hold a literal (an e-mail address): a refusal names the entry and
    the rule, the audit entry counts; neither shows the literal."""
    leaky = 'query Leak { customerByEmail(email: "jane.doe@example.org") { emial } }'
    fine = 'query Fine { customerByEmail(email: "jane.doe@example.org") { id } }'
    with pytest.raises(ManifestError) as refused:
        _register(vault, raw({sha256(leaky): leaky}))
    _register(vault, raw({sha256(fine): fine}))
    assert "jane" not in str(refused.value)
    assert "emial" in str(refused.value)
    assert "jane" not in json.dumps(_audit(vault))
