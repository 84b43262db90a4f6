"""Customer import with duplicate detection: rows for a customer on file (by external
id, email or phone) or twice in the file are skipped, linked or failed with their line;
the lookup is one statement per field and batch, never one per row."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from tests.conftest import CTX
from vault.customers import CustomerInput, ExternalId
from vault.importing import (
    ImportReport,
    OnDuplicate,
    RowError,
    import_customers,
    import_interactions,
)
from vault.runtime import Vault
from vault.storage.models import CustomerRow

HEAD = "email,phone,first_name,last_name,source,external_id\n"
ROWS = (
    "new@example.com,,\u4f1f,\u738b,shop,N1\n"  # 2: new
    "PARISA@example.com,,\u067e\u0631\u06cc\u0633\u0627,,shop,P9\n"  # 3: email on file
    ",+44 20 7946 0958,\u0e2a\u0e21\u0e0a\u0e32\u0e22,,shop,P8\n"  # 4: phone on file
    "new@example.com,,,,shop,N2\n"  # 5: same person as line 2
    "x@example.com,,,,shop,P1\n"  # 6: external id on file
)


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(HEAD + ROWS, encoding="utf-8")
    return path


def _on_file(vault: Vault) -> str:
    with vault.unit(CTX) as s:
        return str(
            vault.customers.create(
                s,
                CustomerInput(
                    email="parisa@example.com",
                    phone="+442079460958",
                    external_ids=[ExternalId("shop", "P1")],
                ),
            ).id
        )


def _count(vault: Vault) -> int:
    with vault.unit(CTX) as s:
        return int(s.scalar(select(func.count()).select_from(CustomerRow)) or 0)


def test_skip_creates_only_new_customers(vault: Vault, tmp_path: Path) -> None:
    """Skip (the default): one new customer; the rows for the customer on file and the
    repeat of line 2 are counted as duplicates. The new name round-trips exactly."""
    _on_file(vault)
    report = import_customers(vault, _file(tmp_path))
    assert ImportReport(read=5, accepted=1, duplicates=4) == report
    assert _count(vault) == 2
    with vault.unit(CTX) as s:
        got = vault.customers.find_by_external_id(s, ExternalId("shop", "N1"))
    assert (got.first_name, got.last_name) == ("\u4f1f", "\u738b")


def test_fail_rejects_each_duplicate_with_its_line(vault: Vault, tmp_path: Path) -> None:
    """Fail: every duplicate is rejected with its line, the field it matched by and
    whom it duplicates (an id, or the earlier line), never the value."""
    existing = _on_file(vault)
    report = import_customers(vault, _file(tmp_path), on_duplicate=OnDuplicate.FAIL)
    on_file = f"a customer with this value is already on file ({existing})"
    expected = [
        RowError(3, f"email: {on_file}"),
        RowError(4, f"phone: {on_file}"),
        RowError(5, "email: the same customer as line 2"),
        RowError(6, f"external_id: {on_file}"),
    ]
    assert ImportReport(read=5, accepted=1, duplicates=0, rejected=expected) == report
    assert "parisa" not in repr(report).lower()


def test_link_gives_the_rows_external_ids_and_interactions_to_the_customer_on_file(
    vault: Vault, tmp_path: Path
) -> None:
    """Link: the duplicates' external ids go to the customer they match (on file, or
    created by an earlier line), so interactions naming those ids land there."""
    existing = _on_file(vault)
    report = import_customers(vault, _file(tmp_path), on_duplicate=OnDuplicate.LINK)
    assert ImportReport(read=5, accepted=1, duplicates=4, linked=4) == report
    with vault.unit(CTX) as s:
        owners = {
            ext: str(vault.customers.find_by_external_id(s, ExternalId("shop", ext)).id)
            for ext in ("P9", "P8", "P1", "N1", "N2")
        }
    assert {"P9": existing, "P8": existing, "P1": existing} == {
        k: owners[k] for k in ("P9", "P8", "P1")
    }
    assert owners["N1"] == owners["N2"] != existing
    interactions = tmp_path / "interactions.csv"
    interactions.write_text(
        "source,customer_external_id,channel,type,occurred_at,external_id\n"
        "shop,P9,web,page_view,2026-11-01T09:00:00Z,i-1\n",
        encoding="utf-8",
    )
    assert import_interactions(vault, interactions).accepted == 1
    with vault.unit(CTX) as s:
        timeline = vault.interactions.timeline(s, uuid.UUID(owners["P9"]))
    assert [i.external_id for i in timeline.items] == ["i-1"]


def test_link_refuses_an_external_id_another_customer_has(vault: Vault, tmp_path: Path) -> None:
    """A row matching one customer by email whose external id is another's is rejected:
    it names both customers."""
    existing = _on_file(vault)
    with vault.unit(CTX) as s:
        other = vault.customers.create(s, CustomerInput(external_ids=[ExternalId("crm", "9")]))
    path = tmp_path / "c.csv"
    path.write_text(HEAD + "parisa@example.com,,,,crm,9\n", encoding="utf-8")
    report = import_customers(vault, path, on_duplicate=OnDuplicate.LINK)
    rule = f"matches several customers on file ({other.id}, {existing}); merge them first"
    assert [RowError(2, f"external_id: {rule}")] == report.rejected


def test_without_detection_the_duplicates_are_created_again(vault: Vault, tmp_path: Path) -> None:
    """Detection off (the benchmark's floor): only stored external ids are recognised."""
    _on_file(vault)
    report = import_customers(vault, _file(tmp_path), detect_duplicates=False)
    assert ImportReport(read=5, accepted=4, duplicates=1) == report


@pytest.mark.parametrize("batch_size", [2, 500])
def test_detection_is_one_lookup_per_field_and_batch(
    vault: Vault, tmp_path: Path, batch_size: int
) -> None:
    """However many rows a batch holds, its email and phone lookups are one statement
    each (not one per row)."""
    path = tmp_path / "many.csv"
    rows = "".join(f"u{i}@example.com,+4915112345{i:03d},,,shop,S{i}\n" for i in range(20))
    path.write_text(HEAD + rows, encoding="utf-8")
    lookups: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "_bidx IN" in statement.replace("\n", " ").replace("_bidx IN (", "_bidx IN"):
            lookups.append(statement)

    engine = vault.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        report = import_customers(vault, path, batch_size=batch_size)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    batches = -(-20 // batch_size)
    assert (20, 2 * batches) == (report.accepted, len(lookups))
