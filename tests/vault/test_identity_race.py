"""Identity resolution under concurrency, and the audit of its refusals.

Two writers of one new person (two creates, or an import and a create), each in its own
unit of work (on PostgreSQL its own connection), are released together right before they
claim the person's email, phone and external id: exactly one writes the customer, the
other waits for it and is refused as DUPLICATE (or counts the row as a duplicate). A
refused create, update or import row leaves an audit entry that names the customer on
file only when the caller may read it, and holds no submitted value: neither does any
log line or error message.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from structlog.testing import capture_logs

from audit.entries import AuditEntry
from tests.conftest import CTX, without_ids
from vault.authorization.context import AccessContext, Actor
from vault.config import Environment, Settings
from vault.crypto import Keyring
from vault.customers import CustomerInput, CustomerPatch, ExternalId
from vault.customers.identity import Contact
from vault.errors import DuplicateCustomer
from vault.importing import ImportReport, OnDuplicate, import_customers
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import AuditEntryRow, CustomerRow

EMAIL = "Golnaz.Tehrani@Example.org"
PHONE = "+44 20 7946 0321"
PERSON = CustomerInput(
    email=EMAIL, phone=PHONE, first_name="\u06af\u0644\u0646\u0627\u0632", last_name="Tehrani"
)
# Every form of the submitted values that must never reach the audit log, a log or an error.
VALUES = (EMAIL, EMAIL.lower(), "golnaz", "tehrani", "7946", "+442079460321", "0321")


def _rows(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(CustomerRow)) or 0)


def _entries(vault: Vault) -> list[tuple[AuditEntry, str]]:
    """Every audit entry, with its whole row as text (every column)."""
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow).order_by(AuditEntryRow.id)).all()
        return [
            (
                AuditEntry.from_canonical(r.canonical),
                " ".join(repr(getattr(r, c.key)) for c in AuditEntryRow.__table__.columns)
                + r.canonical.decode(),
            )
            for r in rows
        ]


def _refusals(vault: Vault) -> list[AuditEntry]:
    return [e for e, _ in _entries(vault) if e.outcome.value == "denied"]


def _holds_no_value(text: str) -> bool:
    scrubbed = without_ids(text.lower())
    return not any(value.lower() in scrubbed for value in VALUES)


def _released_together(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> threading.Barrier:
    """Both writers meet right before their claim (inside their units of work), then go."""
    start = threading.Barrier(2)
    identities = vault.customers.identities
    claim = identities.claim

    def meeting(session: Any, contacts: Iterable[Contact], refs: Iterable[ExternalId] = ()) -> int:
        start.wait(timeout=60)
        return claim(session, contacts, refs)

    monkeypatch.setattr(identities, "claim", meeting)
    return start


def _together(*work: Callable[[], object]) -> list[object]:
    """Run each callable in a thread of its own; what each returned or raised."""
    outcomes: list[object] = [None] * len(work)

    def run(i: int) -> None:
        try:
            outcomes[i] = work[i]()
        except Exception as failed:  # noqa: BLE001 - the outcome under test
            outcomes[i] = failed

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def _create(vault: Vault, data: CustomerInput, context: AccessContext = CTX) -> uuid.UUID:
    with vault.unit(context) as s:
        return vault.customers.create(s, data).id


@pytest.mark.parametrize(
    "data",
    [
        PERSON,
        CustomerInput(phone="+442079460321"),
        CustomerInput(external_ids=[ExternalId("shop", "G-7")]),
    ],
    ids=["email", "phone", "external_id"],
)
def test_two_concurrent_creates_of_one_new_person_one_wins(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, data: CustomerInput
) -> None:
    """Two creates of the same new person released together: one customer is written,
    the other create is DUPLICATE naming it (the operator may read it)."""
    _released_together(vault, monkeypatch)
    outcomes = _together(lambda: _create(vault, data), lambda: _create(vault, data))
    won = [o for o in outcomes if isinstance(o, uuid.UUID)]
    lost = [o for o in outcomes if isinstance(o, DuplicateCustomer)]
    assert (len(won), len(lost), _rows(vault)) == (1, 1, 1)
    assert won[0] == lost[0].existing_id


def test_two_concurrent_updates_to_one_new_email_one_wins(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two customers changed to the same new email at once: one update applies, the
    other is DUPLICATE naming the first; one customer has the email."""
    a = _create(vault, CustomerInput(email="a@example.org"))
    b = _create(vault, CustomerInput(email="b@example.org"))
    _released_together(vault, monkeypatch)

    def change(cid: uuid.UUID) -> uuid.UUID:
        with vault.unit(CTX) as s:
            return vault.customers.update(s, cid, CustomerPatch(email=EMAIL)).id

    outcomes = _together(lambda: change(a), lambda: change(b))
    won = [o for o in outcomes if isinstance(o, uuid.UUID)]
    lost = [o for o in outcomes if isinstance(o, DuplicateCustomer)]
    assert (len(won), len(lost)) == (1, 1)
    assert won[0] == lost[0].existing_id
    with vault.unit(CTX) as s:
        assert [c.id for c in vault.customers.find_by_email(s, EMAIL)] == won


@contextmanager
def _claims(vault: Vault) -> Iterator[list[str]]:
    """The claim statements (advisory locks) sent during the block."""
    claims: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "pg_advisory_xact_lock" in statement:
            claims.append(statement)

    event.listen(vault.db.engine, "before_cursor_execute", seen)
    try:
        yield claims
    finally:
        event.remove(vault.db.engine, "before_cursor_execute", seen)


def test_the_claim_is_one_statement_per_create_on_postgresql(vault: Vault) -> None:
    """PostgreSQL: a create takes its locks (email, phone, external id) in one statement;
    SQLite needs none (the unit of work holds the write lock from BEGIN IMMEDIATE)."""
    with _claims(vault) as claims:
        _create(vault, CustomerInput(email=EMAIL, external_ids=[ExternalId("shop", "1")]))
    expected = 1 if vault.db.dialect == "postgresql" else 0
    assert expected == len(claims)
    assert _holds_no_value(" ".join(claims))


def test_lock_keys_are_sorted_and_hold_no_value(vault: Vault) -> None:
    """The keys claimed are sorted (no deadlock between two claimers), each once, and
    derived from the blind index: the same email in another case is the same key."""
    identities = vault.customers.identities
    contacts = identities.contacts(EMAIL, PHONE)
    keys = identities.lock_keys(contacts, [ExternalId("shop", "G-7")] * 2)
    again = identities.lock_keys(identities.contacts(EMAIL.upper(), "+442079460321"))
    assert sorted(set(keys)) == keys
    assert len(keys) == 3
    assert set(again) < set(keys)
    assert all(-(2**31) <= part < 2**31 for key in keys for part in key)


@pytest.mark.parametrize("create_first", [True, False], ids=["create", "import"])
def test_an_import_racing_a_create_of_one_person_writes_one_customer(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, create_first: bool
) -> None:
    """An import batch and a create of the same new person released together: one
    customer is written; the loser is DUPLICATE (the create) or counts the row as a
    duplicate (the import, skip mode)."""
    path = tmp_path / "c.csv"
    path.write_text(f"email,phone,source,external_id\n{EMAIL},,shop,G-7\n", encoding="utf-8")
    _released_together(vault, monkeypatch)
    create, imported = _together(
        lambda: _create(vault, CustomerInput(email=EMAIL.lower())),
        lambda: import_customers(vault, path),
    )
    assert isinstance(imported, ImportReport)
    assert _rows(vault) == 1
    if isinstance(create, uuid.UUID):
        assert (imported.accepted, imported.duplicates) == (0, 1)
    else:
        assert isinstance(create, DuplicateCustomer)
        assert (imported.accepted, imported.duplicates) == (1, 0)


def test_a_refused_create_is_audited_without_a_value(vault: Vault) -> None:
    """A duplicate create leaves one customer.create entry, outcome denied, naming the
    field and the customer on file; no submitted value is in the audit row, a log line
    or the error."""
    existing = _create(vault, PERSON)
    with capture_logs() as logs, pytest.raises(DuplicateCustomer) as refused:
        _create(vault, PERSON)
    [entry] = _refusals(vault)
    assert (entry.action.value, entry.customer_id) == ("customer.create", None)
    assert dict(entry.fields) == {"email": "duplicate"}
    assert {"reason": "duplicate", "existing": str(existing)} == dict(entry.detail)
    every_row = " ".join(text for _, text in _entries(vault))
    assert _holds_no_value(every_row + repr(logs) + str(refused.value))


def test_a_refused_create_names_no_customer_the_caller_may_not_read(vault: Vault) -> None:
    """The customer on file is restricted, which service delivery may not process: the
    ingest service's duplicate create is DUPLICATE without an id, and its customer.create
    entry (denied) names no customer either."""
    other = _create(vault, PERSON)
    with vault.db.transaction() as s:
        s.execute(update(CustomerRow).values(status="restricted"))
    ingest = AccessContext(Actor("ingest-1", "ingest_service"), "service_delivery")
    with capture_logs() as logs, pytest.raises(DuplicateCustomer) as refused:
        _create(vault, CustomerInput(phone=PHONE), ingest)
    assert refused.value.existing_id is None
    [entry] = _refusals(vault)
    assert (entry.action.value, entry.customer_id, entry.actor) == (
        "customer.create",
        None,
        "ingest-1",
    )
    assert (dict(entry.fields), dict(entry.detail)) == (
        {"phone": "duplicate"},
        {"reason": "duplicate"},
    )
    every_row = " ".join(text for _, text in _entries(vault))
    assert str(other) not in " ".join(t for e, t in _entries(vault) if e.detail)
    assert str(other) not in str(refused.value)
    assert _holds_no_value(every_row + repr(logs) + str(refused.value))


def test_a_refused_update_is_audited_on_the_record_updated(vault: Vault) -> None:
    """Changing an email to another customer's: customer.update denied on the record
    updated, naming the customer on file for the operator; no value anywhere."""
    other = _create(vault, PERSON)
    mine = _create(vault, CustomerInput(email="me@example.org"))
    with (
        capture_logs() as logs,
        pytest.raises(DuplicateCustomer) as refused,
        vault.unit(CTX) as s,
    ):
        vault.customers.update(s, mine, CustomerPatch(email=EMAIL.upper()))
    [entry] = _refusals(vault)
    assert (entry.action.value, entry.customer_id, dict(entry.detail)) == (
        "customer.update",
        mine,
        {"reason": "duplicate", "existing": str(other)},
    )
    every_row = " ".join(text for _, text in _entries(vault))
    assert _holds_no_value(every_row + repr(logs) + str(refused.value))


def test_a_refused_external_id_on_update_is_audited(vault: Vault) -> None:
    """Adding an external id another customer has: customer.update denied, field
    externalIds, the owner named for the operator."""
    owner = _create(vault, CustomerInput(external_ids=[ExternalId("shop", "G-7")]))
    mine = _create(vault, CustomerInput(email="me@example.org"))
    with pytest.raises(DuplicateCustomer), vault.unit(CTX) as s:
        vault.customers.update(s, mine, CustomerPatch(add_external_ids=[ExternalId("shop", "G-7")]))
    [entry] = _refusals(vault)
    assert ("customer.update", mine) == (entry.action.value, entry.customer_id)
    assert ({"externalIds": "duplicate"}, str(owner)) == (
        dict(entry.fields),
        entry.detail["existing"],
    )


def test_rows_an_import_refuses_as_duplicates_are_audited(vault: Vault, tmp_path: Path) -> None:
    """Fail mode: each refused row is one customer.create entry (denied) with its line,
    the field and whom it duplicates; nothing of the file's values is in the log."""
    existing = _create(vault, PERSON)
    path = tmp_path / "c.csv"
    path.write_text(
        "email,phone,first_name,source,external_id\n"
        f"{EMAIL.upper()},,Golnaz,shop,A1\n"
        f",{PHONE},,shop,A2\n"
        "new@example.org,,,shop,A3\n",
        encoding="utf-8",
    )
    with capture_logs() as logs:
        report = import_customers(vault, path, on_duplicate=OnDuplicate.FAIL)
    assert (report.accepted, len(report.rejected)) == (1, 2)
    got = sorted(
        (e.detail["line"], dict(e.fields), e.detail["existing"], e.detail["by"])
        for e in _refusals(vault)
    )
    assert [
        (2, {"email": "duplicate"}, str(existing), "import"),
        (3, {"phone": "duplicate"}, str(existing), "import"),
    ] == got
    every_row = " ".join(text for _, text in _entries(vault))
    assert _holds_no_value(every_row + repr(logs) + repr(report))


def test_the_import_claims_once_per_batch(vault: Vault, tmp_path: Path) -> None:
    """However many rows a batch holds, its claim is one statement on PostgreSQL (none on
    SQLite), beside the one lookup per field."""
    path = tmp_path / "many.csv"
    rows = "".join(f"u{i}@example.org,+4915112345{i:03d},shop,S{i}\n" for i in range(20))
    path.write_text("email,phone,source,external_id\n" + rows, encoding="utf-8")
    with _claims(vault) as claims:
        report = import_customers(vault, path, batch_size=8)
    per_batch = 1 if vault.db.dialect == "postgresql" else 0
    assert (20, 3 * per_batch) == (report.accepted, len(claims))


def _create_in_a_process(
    where: tuple[str, str | None, str, str, str], start: Any, out: Any
) -> None:
    """A process of its own: opens the vault, meets the other before its claim, creates
    the person, and says what happened (``created`` or ``duplicate``, with the id)."""
    url, schema, keyring, key_file, data_dir = where
    settings = Settings(
        data_dir=Path(data_dir),
        database_url=url,
        keyring_path=Path(keyring),
        environment=Environment.TEST,
        audit_key_path=Path(key_file),
        audit_origin="customer-vault/test",
    )
    database = Database(make_engine(url, schema=schema))
    vault = Vault.open(settings, database=database)
    try:
        identities = vault.customers.identities
        claim = identities.claim

        def meeting(session: Any, contacts: Any, refs: Any = ()) -> int:
            start.wait(timeout=60)
            return claim(session, contacts, refs)

        identities.claim = meeting  # type: ignore[method-assign]
        try:
            out.put(("created", str(_create(vault, PERSON))))
        except DuplicateCustomer as refused:
            out.put(("duplicate", str(refused.existing_id)))
    finally:
        vault.close()
        database.dispose()


@pytest.mark.slow
@pytest.mark.processes
def test_two_processes_creating_one_new_person_write_one_customer(
    database: Database,
    database_url: tuple[str, str | None],
    audit_key_file: Path,
    tmp_path: Path,
) -> None:
    """Two processes (each its own pool of connections) create the same new person,
    released together before their claim: one creates it, the other is DUPLICATE
    naming it; one customer row."""
    keyring = tmp_path / "shared-keys" / "keyring.json"
    Keyring.create(keyring, population=1_000_000).close()
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(2), spawn.Queue()
    url, schema = database_url
    processes = [
        spawn.Process(
            target=_create_in_a_process,
            args=(
                (url, schema, str(keyring), str(audit_key_file), str(tmp_path / f"d{i}")),
                start,
                out,
            ),
        )
        for i in range(2)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    said = sorted(out.get(timeout=10) for _ in processes)
    assert [p.exitcode for p in processes] == [0, 0]
    assert [kind for kind, _ in said] == ["created", "duplicate"]
    assert said[0][1] == said[1][1]
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(CustomerRow)) == 1
