"""The console's CSV export of the audit trail (/console/audit/export.csv) through the real
app: one row per entry the search's filters match (oldest first), its columns, cells a
spreadsheet would run as formulas escaped, refused to a role without the audit grant,
audited itself, nothing personal in it, and no temporary file left behind."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from api.app import create_app
from api.pages.console.trail_csv import COLUMNS, spreadsheet_safe
from audit.entries import AuditAction
from audit.merkle import leaf_hash
from tests.api.test_console import OFFICER, audit, console
from tests.pages import ANN, Mailbox, mailing_vault, make_customer, sign_in
from vault.authorization.context import AccessContext, Actor, buffer_of
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow, AuditLogRow

EXPECTED_COLUMNS = [
    "position", "entry_id", "time", "actor", "role", "purpose", "action", "outcome",
    "customer_id", "fields", "request_id", "detail", "entry_hash",
]  # fmt: skip


@pytest.fixture
def site(
    vault: Vault, mailbox: Mailbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Vault, TestClient]]:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    mailing = mailing_vault(vault, mailbox)
    with TestClient(create_app(mailing, webhook_every=None, sequence_every=60)) as client:
        yield mailing, client


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def export_entry(vault: Vault) -> tuple[int, dict[str, Any]]:
    """The newest console CSV export's audit entry and how many entries came before it."""
    entries = audit(vault)
    found = [
        i for i, e in enumerate(entries)
        if e["action"] == "audit.export" and e["detail"].get("kind") == "console-csv"
    ]  # fmt: skip
    assert found, "the export was not audited"
    return found[-1], entries[found[-1]]


def record_as(vault: Vault, subject: str) -> None:
    """An entry under ``subject`` (a support agent's lookup that found nothing)."""
    context = AccessContext(Actor(subject, "support_agent"), "support")
    with vault.unit(context) as s:
        buffer_of(s).add(AuditAction.CUSTOMER_LOOKUP, detail={"matches": 0})


def test_every_entry_is_one_row_with_the_documented_columns(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """Unfiltered, the file holds every entry recorded before the export, oldest first,
    each row the entry's values, its log position and its Merkle leaf hash (hex)."""
    vault, client = site
    make_customer(vault)
    customer = TestClient(client.app)
    sign_in(customer, mailbox)
    customer.get("/privacy/data")
    console(vault, client)
    vault.audit.sequence(vault.db)
    record_as(vault, "agent-after-sequencing")  # not sequenced yet: no position

    answer = client.get("/console/audit/export.csv")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="audit.csv"'
    assert answer.headers["cache-control"] == "no-store"
    assert list(COLUMNS) == EXPECTED_COLUMNS
    assert answer.text.startswith(",".join(EXPECTED_COLUMNS) + "\r\n")
    before, _ = export_entry(vault)
    entries = audit(vault)[:before]
    rows = rows_of(answer.text)
    assert [e["id"] for e in entries] == [r["entry_id"] for r in rows]
    with vault.db.transaction() as s:
        placed = {
            str(entry_id): (position, digest)
            for entry_id, position, digest in s.execute(
                select(AuditEntryRow.entry_id, AuditLogRow.position, AuditLogRow.leaf_hash).join(
                    AuditLogRow, AuditLogRow.entry_pk == AuditEntryRow.id
                )
            )
        }
        canonical = dict(s.execute(select(AuditEntryRow.entry_id, AuditEntryRow.canonical)).all())
    for entry, row in zip(entries, rows, strict=True):
        position, digest = placed.get(
            entry["id"], (None, leaf_hash(canonical[uuid.UUID(entry["id"])]))
        )
        expected = {
            "position": "" if position is None else str(position),
            "time": entry["time"],
            "actor": entry["actor"],
            "role": entry["role"],
            "purpose": entry["purpose"],
            "action": entry["action"],
            "outcome": entry["outcome"],
            "customer_id": entry["customer"] or "",
            "fields": entry["fields"],
            "request_id": entry["request"],
            "detail": entry["detail"],
            "entry_hash": digest.hex(),
        }
        expected["time"] = datetime.fromisoformat(entry["time"]).isoformat()
        actual = {**row, "fields": json.loads(row["fields"]), "detail": json.loads(row["detail"])}
        del actual["entry_id"]
        assert expected == actual
    assert rows[-1]["position"] == ""
    assert rows[0]["position"] == "0"


def test_the_rows_are_exactly_the_entries_the_search_filters_match(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """Column filters (customer, action, actor, time) and the scanned ones (purpose,
    outcome) select the same entries as the search; the audit page links to the export
    with its current filters, percent-encoded."""
    vault, client = site
    ann = make_customer(vault)
    other = make_customer(vault, email="bo@example.com", phone="+66812345679")
    customer = TestClient(client.app)
    sign_in(customer, mailbox)
    customer.get("/privacy/data")
    customer.get("/privacy/access")
    record_as(vault, "agent+1")
    console(vault, client, role="admin")
    client.get("/console/audit")  # refused: an access.denied entry (outcome denied)
    console(vault, client)

    # (query, which entries it selects, whether some exist)
    filters: list[tuple[dict[str, str], Callable[[dict[str, Any]], bool], bool]] = [
        ({"customer": str(ann)}, lambda e: e["customer"] == str(ann), True),
        ({"customer": str(other)}, lambda e: e["customer"] == str(other), True),
        ({"action": "pii.access", "purpose": "self"},
         lambda e: e["action"] == "pii.access" and e["purpose"] == "self", True),
        ({"outcome": "denied"}, lambda e: e["outcome"] == "denied", True),
        ({"actor": "agent+1"}, lambda e: e["actor"] == "agent+1", True),
        ({"since": "2000-01-01T00:00", "until": "2000-01-02T00:00"}, lambda e: False, False),
        ({"purpose": "marketing_email"}, lambda e: e["purpose"] == "marketing_email", False),
    ]  # fmt: skip
    for query, matches, some in filters:
        answer = client.get("/console/audit/export.csv", params=query)
        assert answer.status_code == 200, query
        before, entry = export_entry(vault)
        expected = [e["id"] for e in audit(vault)[:before] if matches(e)]
        actual = [r["entry_id"] for r in rows_of(answer.text)]
        assert (query, expected, some) == (query, actual, bool(actual))
        assert len(expected) == entry["detail"]["entries"]

    page = client.get("/console/audit", params={"actor": "agent+1", "purpose": "support"}).text
    assert 'href="/console/audit/export.csv?actor=agent%2B1&amp;purpose=support"' in page
    plain = client.get("/console/audit").text
    assert 'href="/console/audit/export.csv"' in plain
    assert client.get("/console/audit/export.csv?since=yesterday").status_code == 400


def test_cells_a_spreadsheet_would_run_as_formulas_start_with_a_quote() -> None:
    """=, +, -, @, tab and carriage return at the start of a cell are neutralised."""
    cells = ["=1+1", "+1|calc", "-2+3", "@SUM(A1)", "\tx", "\rx", "a=b", "officer-ann", ""]
    expected = ["'=1+1", "'+1|calc", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "a=b", "officer-ann", ""]
    assert expected == [spreadsheet_safe(c) for c in cells]


def test_exported_formula_like_values_are_escaped_and_quoting_round_trips(
    site: tuple[Vault, TestClient],
) -> None:
    """Actors that begin like a formula come out with a leading quote; the JSON columns
    (commas, double quotes) survive CSV quoting."""
    vault, client = site
    for subject in ("+1|calc", "-2+3", "@import", "plain"):
        record_as(vault, subject)
    console(vault, client)

    rows = rows_of(client.get("/console/audit/export.csv", params={"purpose": "support"}).text)

    assert [r["actor"] for r in rows] == ["'+1|calc", "'-2+3", "'@import", "plain"]
    assert [json.loads(r["detail"]) for r in rows] == [{"matches": 0}] * 4
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


def test_a_role_without_the_audit_grant_is_refused_and_the_refusal_audited(
    site: tuple[Vault, TestClient],
) -> None:
    """An admin in the console gets a 403 page, no CSV; the refusal is an access.denied
    entry under the admin's subject, and no export entry is written."""
    vault, client = site
    console(vault, client, role="admin")

    answer = client.get("/console/audit/export.csv")

    assert (answer.status_code, answer.headers["content-type"].startswith("text/html")) == (
        403,
        True,
    )
    entries = audit(vault)
    assert [(e["actor"], e["role"]) for e in entries if e["action"] == "access.denied"] == [
        (OFFICER, "admin")
    ]
    assert not [e for e in entries if e["detail"].get("kind") == "console-csv"]
    signed_out = TestClient(client.app).get("/console/audit/export.csv", follow_redirects=False)
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/console")


def test_the_export_is_audited_and_leaves_no_temporary_file(
    site: tuple[Vault, TestClient],
) -> None:
    """One audit.export entry per download, under the officer, with the filter's customer
    and the count of rows; the spooled file is gone once the response is read."""
    vault, client = site
    ann = make_customer(vault)
    console(vault, client)

    answer = client.get("/console/audit/export.csv", params={"customer": str(ann)})

    _, entry = export_entry(vault)
    expected = {
        "actor": OFFICER, "role": "compliance_officer", "purpose": "compliance",
        "customer": str(ann), "outcome": "success",
        "detail": {"kind": "console-csv", "entries": len(rows_of(answer.text)), "filtered": True},
    }  # fmt: skip
    assert expected == {k: entry[k] for k in expected}
    assert len(rows_of(answer.text)) >= 1
    assert list(Path(tempfile.gettempdir()).iterdir()) == []


def test_no_personal_value_reaches_the_file(
    site: tuple[Vault, TestClient], mailbox: Mailbox
) -> None:
    """After a customer signed in, read and changed their data, the export holds ids,
    words and counts: none of the customer's values, no client pseudonym."""
    vault, client = site
    make_customer(vault)
    customer = TestClient(client.app)
    sign_in(customer, mailbox)
    for path in ("/privacy/data", "/privacy/consents", "/privacy/access", "/privacy/requests"):
        assert customer.get(path).status_code == 200
    console(vault, client)

    text = client.get("/console/audit/export.csv").text

    clients = {e["client"] for e in audit(vault) if e["client"]}
    values = [ANN["email"], ANN["phone"], ANN["first_name"], ANN["last_name"], ANN["birth_date"],
              "Sukhumvit", "Bangkok", mailbox.wait(1)["To"], *clients]  # fmt: skip
    assert [v for v in values if v and v in text] == []
    assert len(rows_of(text)) > 5
