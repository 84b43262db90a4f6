"""The console's audit search is audited as what it is: one ``audit.search`` entry per page
shown, with the search's filters (ids, times, enum words; never a free-text value the log
did not already hold), while the downloads (JSONL, CSV) stay ``audit.export``; a trail
holding both, and older console searches written as ``audit.export``, still verifies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from audit.entries import AuditAction, AuditEntry, Outcome
from tests.api.test_console import OFFICER, audit, console
from tests.pages import ANN, csrf_of, make_customer
from vault.authorization.context import AccessContext, Actor, buffer_of
from vault.pagination import MAX_PAGE
from vault.runtime import Vault


def _after(vault: Vault, before: int, action: str) -> list[dict[str, Any]]:
    return [e for e in audit(vault)[before:] if e["action"] == action]


def test_a_search_page_is_one_audit_search_entry_with_its_filters(
    site: tuple[Vault, TestClient],
) -> None:
    """A search by customer, action, time range and outcome writes one audit.search entry
    under the officer, naming the customer and carrying the filters and the number of
    entries shown; no audit.export is written for it."""
    vault, client = site
    ann = make_customer(vault)
    console(vault, client)
    before = len(audit(vault))

    page = client.get(
        "/console/audit",
        params={
            "customer": str(ann), "action": "customer.create", "since": "2000-01-01T00:00",
            "until": "2100-01-01", "outcome": "success",
        },
    )  # fmt: skip

    assert page.status_code == 200
    shown = page.text.count('data-action="customer.create"')
    [entry] = _after(vault, before, "audit.search")
    expected = {
        "actor": OFFICER, "role": "compliance_officer", "purpose": "compliance",
        "customer": str(ann), "outcome": "success", "fields": {},
        "detail": {
            "kind": "console", "entries": shown, "customer": str(ann),
            "action": "customer.create", "outcome": "success",
            "since": "2000-01-01T00:00:00+00:00", "until": "2100-01-01T00:00:00+00:00",
        },
    }  # fmt: skip
    assert expected == {k: entry[k] for k in expected}
    assert shown == 1
    assert _after(vault, before, "audit.export") == []


def test_a_search_scanning_several_pages_of_the_trail_is_still_one_entry(
    site: tuple[Vault, TestClient],
) -> None:
    """A purpose no entry carries makes the search scan several pages of the trail (it
    filters purpose after reading); the page shown is still exactly one entry, and the
    unmatched free text is not recorded, only that it matched nothing."""
    vault, client = site
    with vault.unit(AccessContext(Actor("agent-bo", "support_agent"), "support")) as s:
        for _ in range(MAX_PAGE + 5):
            buffer_of(s).add(AuditAction.CUSTOMER_LOOKUP, detail={"matches": 0})
    console(vault, client)
    before = len(audit(vault))

    client.get("/console/audit", params={"purpose": "nobody-has-this"})

    [entry] = _after(vault, before, "audit.search")
    assert entry["detail"] == {"kind": "console", "entries": 0, "purpose_unmatched": True}
    assert _after(vault, before, "audit.export") == []


def test_a_free_text_filter_is_kept_only_when_an_entry_shown_carries_it(
    site: tuple[Vault, TestClient],
) -> None:
    """An actor and a purpose the trail holds are recorded as searched; a customer's email
    typed into the actor or purpose field, or an outcome outside the vocabulary, never
    reaches the log."""
    vault, client = site
    make_customer(vault)
    console(vault, client)
    before = len(audit(vault))

    client.get("/console/audit", params={"actor": OFFICER, "purpose": "compliance"})
    client.get(
        "/console/audit",
        params={"actor": ANN["email"], "purpose": ANN["email"], "outcome": ANN["email"]},
    )

    known, typed = (e["detail"] for e in _after(vault, before, "audit.search"))
    assert (known["actor"], known["purpose"]) == (OFFICER, "compliance")
    expected = {
        "kind": "console", "entries": 0, "actor_unmatched": True, "purpose_unmatched": True,
        "outcome": "other",
    }  # fmt: skip
    assert expected == typed
    dumped = json.dumps(audit(vault)[before:], ensure_ascii=False)
    assert [v for v in (ANN["email"], ANN["phone"]) if v in dumped] == []


def test_downloads_stay_audit_export_and_the_trail_verifies(
    site: tuple[Vault, TestClient],
) -> None:
    """The CSV and JSONL downloads are one audit.export each (no audit.search); a trail
    holding a search, both downloads and an older console search written as
    audit.export (as before audit.search existed) exports and verifies."""
    vault, client = site
    ann = make_customer(vault)
    with vault.unit(AccessContext(Actor(OFFICER, "compliance_officer"), "compliance")) as s:
        buffer_of(s).add(AuditAction.AUDIT_EXPORT, detail={"entries": 3, "kind": "graphql"})
    console(vault, client)
    client.get("/console/audit", params={"customer": str(ann)})
    before = len(audit(vault))

    client.get("/console/audit/export.csv", params={"customer": str(ann)})
    vault.audit.sequence(vault.db)
    exported = client.get("/console/audit/export.jsonl")

    downloads = _after(vault, before, "audit.export")
    assert [(e["detail"].get("kind"), e["detail"]["filtered"]) for e in downloads] == [
        ("console-csv", True),
        (None, False),
    ]
    assert _after(vault, before, "audit.search") == []
    lines = [json.loads(line) for line in exported.content.splitlines()]
    actions = [line["entry"]["action"] for line in lines if "entry" in line]
    assert {"audit.search", "audit.export"} <= set(actions)
    token = csrf_of(client.get("/console/audit/verify").text)
    verified = client.post(
        "/console/audit/verify", data={"csrf": token},
        files={"export": ("audit.jsonl", exported.content, "application/x-ndjson")},
    )  # fmt: skip
    assert (verified.status_code, 'data-verified="ok"' in verified.text) == (200, True)


def test_an_entry_of_either_action_reads_back_from_its_canonical_bytes() -> None:
    """audit.search is part of the entry vocabulary: its canonical bytes parse back to
    the same entry, as audit.export's do."""
    for action in (AuditAction.AUDIT_SEARCH, AuditAction.AUDIT_EXPORT):
        entry = AuditEntry(
            action=action, outcome=Outcome.SUCCESS, actor=OFFICER, role="compliance_officer",
            purpose="compliance", request_id="r1", time=datetime(2026, 12, 7, tzinfo=UTC),
            detail={"kind": "console"},
        )  # fmt: skip
        assert entry == AuditEntry.from_canonical(entry.canonical())
