"""Bulk import: exact line numbers, value-free reasons, idempotency, batches, file errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import CTX
from vault.customers import Customer, CustomerInput, ExternalId
from vault.importing import (
    ImportFileError,
    ImportReport,
    RowError,
    import_customers,
    import_interactions,
)
from vault.importing import service as importing
from vault.importing.validation import _TYPES
from vault.interactions import Interaction
from vault.runtime import Vault
from vault.storage.models import Base, CustomerRow, DataKeyRow, InteractionRow

NAMES = [
    ("\u0632\u0647\u0631\u0627", "\u0645\u062d\u0645\u062f\u06cc"),  # Persian
    ("\u0e2a\u0e21\u0e0a\u0e32\u0e22", "\u0e43\u0e08\u0e14\u0e35"),  # Thai
    ("\u5b50\u6db5", "\u738b"),  # Chinese
    ("Ren\u00e9e", "Fran\u00e7ois-L\u00f8kke"),  # accented Latin
    ("Zo\u0308e", "A\u030angstr\u00f6m"),  # combining marks, kept as given
    ("  Padded ", 'O\'Brien, "Jr"'),  # spaces, comma and quotes survive CSV quoting
]
CHANNELS = "web, email, sms, push, social, chat, phone, store, app"


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _jsonl(path: Path, rows: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    return _write(path, "\n".join(lines) + "\n")


def _count(vault: Vault, table: type[Base]) -> int:
    with vault.unit(CTX) as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _by_ref(vault: Vault, source: str, external_id: str) -> Customer:
    with vault.unit(CTX) as s:
        return vault.customers.find_by_external_id(s, ExternalId(source, external_id))


def _emails(vault: Vault) -> list[str]:
    with vault.unit(CTX) as s:
        ids = list(s.scalars(select(CustomerRow.id)))
        return sorted(c.email or "" for c in vault.customers.get_many(s, ids))


def _timeline(vault: Vault, customer_id: uuid.UUID) -> list[Interaction]:
    with vault.unit(CTX) as s:
        return vault.interactions.timeline(s, customer_id, first=100).items


# -- customers: CSV ---------------------------------------------------------------


CUSTOMERS_CSV = (
    "email,phone,first_name,last_name,birth_date,address,locale,tier,tags,attributes,"
    "source,external_id\n"  # 1
    "ada@example.com,+44 20 7946 0958,Ada,Lovelace,1985-12-10,,en-GB,gold,vip|news,"
    '"{""score"": 7}",crm,1\n'  # 2
    'grace@example.com,,Grace,Hopper,,"Flat 3\n'  # 3: a quoted address over three lines
    "Rose Court\n"  # 4
    'London",en-US,,,,crm,2\n'  # 5
    "not-an-email,,Bad,Email,,,,,,,crm,3\n"  # 6: bad row right after the multi-line one
    "alan@example.com,,Alan,Turing,,,,,,,crm,4\n"  # 7
    "phone@example.com,12,Bad,Phone,,,,,,,crm,5\n"  # 8
    "\n"  # 9: blank lines are skipped
    "born@example.com,,Bad,Birth,1990-02-30,,,,,,crm,6\n"  # 10
    "short@example.com,,Too,Few\n"  # 11
    "locale@example.com,,Bad,Locale,,,not a locale,,,,crm,7\n"  # 12
    'attrs@example.com,,Bad,Attrs,,,,,,"[1, 2]",crm,8\n'  # 13
    "half@example.com,,Half,Ref,,,,,,,crm,\n"  # 14
    "edsger@example.com,,Edsger,Dijkstra,,,nl-NL,,,,crm,9\n"  # 15
)


def test_csv_import_reports_bad_rows_with_exact_lines(vault: Vault, tmp_path: Path) -> None:
    """Good rows land; each bad row is skipped and reported on the line it starts on,
    counting every physical line of quoted multi-line fields before it."""
    report = import_customers(vault, _write(tmp_path / "customers.csv", CUSTOMERS_CSV))
    expected = ImportReport(
        read=11,
        accepted=4,
        duplicates=0,
        rejected=[
            RowError(6, "email: is not a valid email address"),
            RowError(
                8, "phone: is not a valid phone number (use international format, e.g. +44...)"
            ),
            RowError(10, "birth_date: is not a calendar date"),  # 1990-02-30
            RowError(11, "record: has 4 fields; the header has 12"),
            RowError(12, "locale: must be a BCP 47 language tag such as 'fa-IR'"),
            RowError(13, "attributes: must be a JSON object"),
            RowError(
                14, "external_id: is required when the other of source and external_id is given"
            ),
        ],
    )
    assert report == expected
    assert _emails(vault) == [
        "ada@example.com", "alan@example.com", "edsger@example.com", "grace@example.com",
    ]  # fmt: skip
    ada = _by_ref(vault, "crm", "1")
    assert (ada.phone, ada.tier, ada.tags, ada.attributes) == (
        "+442079460958",
        "gold",
        ["vip", "news"],
        {"score": 7},
    )
    grace = _by_ref(vault, "crm", "2")
    assert (grace.address, grace.locale) == ("Flat 3\nRose Court\nLondon", "en-US")


def test_csv_with_bom_and_crlf_line_ends(vault: Vault, tmp_path: Path) -> None:
    """A UTF-8 BOM and CRLF line ends are understood; line numbers stay right."""
    text = "\ufeffemail,first_name\r\nok@example.com,Ok\r\nbad,Bad\r\n"
    report = import_customers(vault, _write(tmp_path / "bom.csv", text))
    assert report == ImportReport(2, 1, 0, [RowError(3, "email: is not a valid email address")])
    assert _emails(vault) == ["ok@example.com"]


def test_invalid_utf8_rejects_only_its_row(vault: Vault, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 reject their row, naming the column; other rows land."""
    raw = b"email,first_name,last_name\na@example.com,A,\xff\xfe\nb@example.com,B,Ok\n"
    report = import_customers(vault, _write(tmp_path / "latin1.csv", raw))
    assert report == ImportReport(2, 1, 0, [RowError(2, "last_name: is not valid UTF-8")])
    raw_jsonl = b'{"email": "c@example.com", "last_name": "\xe9"}\n{"email": "d@example.com"}\n'
    report = import_customers(vault, _write(tmp_path / "latin1.jsonl", raw_jsonl))
    assert report == ImportReport(2, 1, 0, [RowError(1, "record: is not valid UTF-8")])
    assert _emails(vault) == ["b@example.com", "d@example.com"]


def test_malformed_csv_quoting_rejects_the_row_and_reading_goes_on(
    vault: Vault, tmp_path: Path
) -> None:
    """A record the CSV parser refuses is reported on its line; the next rows still import."""
    text = 'email,first_name\n"x@example.com"junk,X\ny@example.com,Y\n'
    report = import_customers(vault, _write(tmp_path / "quotes.csv", text))
    expected = [RowError(2, "record: is not well-formed CSV (check the quotes)")]
    assert report == ImportReport(2, 1, 0, expected)
    assert _emails(vault) == ["y@example.com"]


def test_an_oversized_field_rejects_its_record(vault: Vault, tmp_path: Path) -> None:
    """A field beyond the CSV parser's size limit rejects its record; reading goes on."""
    text = 'email,address\nw@example.com,"' + "x" * 200_000 + '"\nv@example.com,ok\n'
    report = import_customers(vault, _write(tmp_path / "big.csv", text))
    expected = [RowError(2, "record: a field is longer than 131072 characters")]
    assert report == ImportReport(2, 1, 0, expected)
    assert _emails(vault) == ["v@example.com"]


# -- customers: JSONL -------------------------------------------------------------


def test_jsonl_import_reports_bad_lines(vault: Vault, tmp_path: Path) -> None:
    """Each JSON line is one record; blank lines are skipped; bad lines are reported."""
    path = _jsonl(
        tmp_path / "customers.jsonl",
        [
            {"email": "ada@example.com", "tags": ["vip"], "attributes": {"plan": "pro"},
             "source": "crm", "external_id": 1},  # 1 (a numeric id is fine)
            "",  # 2
            '{"email": "broken@example.com", ',  # 3
            '["not", "an", "object"]',  # 4
            {"email": "not-an-email", "first_name": "Bad"},  # 5
            {"email": "x@example.com", "shoe_size": 44},  # 6
            {"email": "y@example.com", "tags": "vip|news"},  # 7
            {"email": "z@example.com", "phone": 4915112345678},  # 8
            {"email": "nan@example.com", "attributes": "NaN"},  # 9
            '{"email": "nan@example.com", "attributes": {"x": NaN}}',  # 10
            {"email": "grace@example.com", "first_name": None, "locale": "en-US"},  # 11
        ],
    )  # fmt: skip
    report = import_customers(vault, path)
    assert report == ImportReport(
        read=10,
        accepted=2,
        duplicates=0,
        rejected=[
            RowError(3, "record: is not valid JSON"),
            RowError(4, "record: must be a JSON object"),
            RowError(5, "email: is not a valid email address"),
            RowError(6, "record: unknown key(s): shoe_size"),
            RowError(7, "tags: must be a list of strings"),
            RowError(8, "phone: must be a string"),
            RowError(9, "attributes: must be a JSON object"),
            RowError(10, "record: is not valid JSON"),
        ],
    )
    ada = _by_ref(vault, "crm", "1")
    assert (ada.email, ada.tags, ada.attributes) == ("ada@example.com", ["vip"], {"plan": "pro"})


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_names_in_any_script_round_trip_exactly(vault: Vault, tmp_path: Path, suffix: str) -> None:
    """Persian, Thai, Chinese and accented names come back byte for byte from CSV and JSONL."""
    if suffix == ".csv":

        def cell(text: str) -> str:
            return '"' + text.replace('"', '""') + '"'

        lines = ["first_name,last_name,source,external_id"]
        lines += [f"{cell(f)},{cell(last)},n,{i}" for i, (f, last) in enumerate(NAMES)]
        path = _write(tmp_path / f"names{suffix}", "\n".join(lines) + "\n")
    else:
        rows = [
            {"first_name": f, "last_name": last, "source": "n", "external_id": str(i)}
            for i, (f, last) in enumerate(NAMES)
        ]
        path = _jsonl(tmp_path / f"names{suffix}", rows)
    report = import_customers(vault, path)
    assert report == ImportReport(len(NAMES), len(NAMES), 0, [])
    for i, (first, last) in enumerate(NAMES):
        got = _by_ref(vault, "n", str(i))
        assert (got.first_name, got.last_name) == (first, last)
        assert (got.first_name or "").encode() == first.encode()
        assert (got.last_name or "").encode() == last.encode()


def test_reasons_never_contain_values(vault: Vault, tmp_path: Path) -> None:
    """No reason echoes a cell of a rejected row: bad emails, phones, dates or any other value."""
    secrets = {
        "email": ["zahra.secret.at.example.com", "ada@@example.com", "secret@nowhere"],
        "phone": ["+99 1234", "0044 20 secret", "12"],
        "birth_date": ["31/12/1990", "2999-01-01"],
        "locale": ["secret locale"],
    }
    csv_lines = ["email,phone,first_name,birth_date,locale"]
    jsonl_rows: list[Any] = []
    for column, values in secrets.items():
        for value in values:
            row = {"email": "ok@example.com", "first_name": "Secretname", column: value}
            csv_lines.append(",".join(row.get(c, "") for c in csv_lines[0].split(",")))
            jsonl_rows.append(row)
    reports = [
        import_customers(vault, _write(tmp_path / "s.csv", "\n".join(csv_lines) + "\n")),
        import_customers(vault, _jsonl(tmp_path / "s.jsonl", jsonl_rows)),
    ]
    every_value = [v for values in secrets.values() for v in values] + ["Secretname"]
    for report in reports:
        assert (report.accepted, len(report.rejected)) == (0, len(jsonl_rows))
        for problem in report.rejected:
            for value in every_value:
                assert value not in problem.reason
            assert problem.reason.split(":")[0] in secrets


# -- customers: idempotency, batches ----------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_reimport_counts_duplicates(vault: Vault, tmp_path: Path, suffix: str) -> None:
    """Importing the same file again accepts nothing and counts every row as a duplicate;
    a second row with an external id seen earlier in the same file is a duplicate too."""
    rows = [
        {"email": f"p{i}@example.com", "source": "crm", "external_id": f"E{i}"} for i in range(3)
    ] + [{"email": "again@example.com", "source": "crm", "external_id": "E0"}]
    if suffix == ".csv":
        text = "email,source,external_id\n" + "".join(
            f"{r['email']},{r['source']},{r['external_id']}\n" for r in rows
        )
        path = _write(tmp_path / f"c{suffix}", text)
    else:
        path = _jsonl(tmp_path / f"c{suffix}", list(rows))
    first = import_customers(vault, path)
    second = import_customers(vault, path)
    assert first == ImportReport(4, 3, 1, [])
    assert second == ImportReport(4, 0, 4, [])
    assert _count(vault, CustomerRow) == 3


def test_each_batch_is_one_transaction(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside a batch rolls back that whole batch; earlier batches stay committed."""
    text = "email\n" + "".join(f"u{i}@example.com\n" for i in range(6))
    path = _write(tmp_path / "c.csv", text)
    create = vault.customers.create
    calls = {"n": 0}

    def failing_create(session: Any, data: CustomerInput, **options: bool) -> Customer:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk full")
        return create(session, data, **options)

    monkeypatch.setattr(vault.customers, "create", failing_create)
    with pytest.raises(RuntimeError):
        import_customers(vault, path, batch_size=3)
    assert _emails(vault) == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert _count(vault, DataKeyRow) == 3


def test_rows_the_service_refuses_are_dropped_and_the_batch_redone(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should pre-validation miss a rule, the service's refusal still rejects just that row
    (with its line) and the batch is written without it: nothing half-written."""
    monkeypatch.setattr(importing, "_check_customer", lambda *_: None)
    text = (
        "email,phone,source,external_id\n"
        "a@example.com,,crm,1\n"
        "bad,,crm,2\n"
        "b@example.com,12,crm,3\n"
        "c@example.com,,crm,4\n"
    )
    report = import_customers(vault, _write(tmp_path / "c.csv", text), batch_size=10)
    assert report == ImportReport(
        read=4,
        accepted=2,
        duplicates=0,
        rejected=[
            RowError(3, "email: is not a valid email address"),
            RowError(
                4, "phone: is not a valid phone number (use international format, e.g. +44...)"
            ),
        ],
    )
    assert _emails(vault) == ["a@example.com", "c@example.com"]
    assert _count(vault, DataKeyRow) == 2


def test_progress_counts_rows_read_per_batch(vault: Vault, tmp_path: Path) -> None:
    """progress(n) follows each committed batch with the rows read for it, bad ones included."""
    text = "email\n" + "".join(f"u{i}@example.com\n" for i in range(4)) + "bad\n"
    calls: list[int] = []
    report = import_customers(
        vault, _write(tmp_path / "c.csv", text), batch_size=2, progress=calls.append
    )
    assert (report.read, report.accepted, len(report.rejected)) == (5, 4, 1)
    assert calls == [2, 2, 1]


# -- file errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("unknown.csv", "email,shoe_size\na@example.com,44\n", "unknown column(s): shoe_size"),
        ("twice.csv", "email,Email\na@example.com,b@example.com\n", "given twice: email"),
        ("empty.csv", "", "the file is empty"),
        ("blank.csv", "email,,first_name\n", "header column 2 has no name"),
        ("noheader.csv", "ada@example.com,Ada\n", "no known column in the header"),
        ("junk.csv", "email,ada@example.com\n", "unknown column(s): 1 whose name looks like data"),
    ],
)
def test_header_problems_are_file_errors(
    vault: Vault, tmp_path: Path, name: str, text: str, message: str
) -> None:
    """A bad header stops the import before anything is written, naming the problem
    (and unknown columns) but never a value from a header-less first row."""
    with pytest.raises(ImportFileError) as info:
        import_customers(vault, _write(tmp_path / name, text))
    assert message in str(info.value)
    assert "ada@example.com" not in str(info.value)
    assert info.value.code == "BAD_USER_INPUT"
    assert _count(vault, CustomerRow) == 0


def test_interaction_header_needs_its_columns(vault: Vault, tmp_path: Path) -> None:
    """An interactions file must name the customer and have channel, type and occurred_at."""
    path = _write(tmp_path / "i.csv", "customer_id,channel,type\n")
    with pytest.raises(ImportFileError) as info:
        import_interactions(vault, path)
    assert "missing column(s): occurred_at" in str(info.value)
    path = _write(tmp_path / "j.csv", "source,channel,type,occurred_at\n")
    with pytest.raises(ImportFileError) as info:
        import_interactions(vault, path)
    assert "customer_id (or source and customer_external_id)" in str(info.value)


def test_format_comes_from_the_extension_or_the_caller(vault: Vault, tmp_path: Path) -> None:
    """.csv, .jsonl and .ndjson are known; other names need an explicit format."""
    text = "email\na@example.com\n"
    with pytest.raises(ImportFileError, match="unknown file type"):
        import_customers(vault, _write(tmp_path / "c.txt", text))
    assert import_customers(vault, tmp_path / "c.txt", fmt="csv") == ImportReport(1, 1, 0, [])
    nd = _jsonl(tmp_path / "c.NDJSON", [{"email": "b@example.com"}])
    assert import_customers(vault, nd) == ImportReport(1, 1, 0, [])
    with pytest.raises(ImportFileError, match="unknown import format"):
        import_customers(vault, tmp_path / "c.txt", fmt="xml")


def test_missing_or_unreadable_files_are_file_errors(vault: Vault, tmp_path: Path) -> None:
    """A missing file or a directory raises ImportFileError, not an OSError."""
    with pytest.raises(ImportFileError, match="no such file"):
        import_customers(vault, tmp_path / "missing.csv")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(ImportFileError, match="is a directory"):
        import_interactions(vault, tmp_path / "dir.jsonl")


# -- interactions --------------------------------------------------------------------------


@pytest.fixture
def shoppers(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    """Two customers: one known to the shop as C1, one addressed by id."""
    with vault.unit(CTX) as s:
        a = vault.customers.create(s, CustomerInput(external_ids=[ExternalId("shop", "C1")]))
        b = vault.customers.create(s, CustomerInput(first_name="B"))
    return a.id, b.id


def _interactions_csv(b: uuid.UUID) -> str:
    missing = uuid.UUID(int=1)
    head = "customer_id,source,customer_external_id,channel,type,occurred_at,amount,currency,external_id,payload\n"  # noqa: E501
    return head + (
        ',shop,C1,web,page_view,2026-11-01T09:00:00+01:00,,,i-1,"{""url"": ""/p/1""}"\n'  # 2
        f"{b},,,web,purchase,2026-11-01T10:00:00Z,19.99,EUR,i-2,\n"  # 3
        f"{b},,,web,page_view,2026-11-01T10:00:00,,,i-3,\n"  # 4: naive time
        f"{b},,,store,purchase,2026-11-01T10:00:00Z,100.5,JPY,i-4,\n"  # 5
        f"{b},,,store,purchase,2026-11-01T10:00:00Z,10,EURO,i-5,\n"  # 6
        ",shop,C999,web,page_view,2026-11-01T10:00:00Z,,,i-6,\n"  # 7
        f"{b},,,fax,page_view,2026-11-01T10:00:00Z,,,i-7,\n"  # 8
        ",shop,C1,chat,chat_message,2026-11-02T08:30:00Z,,,i-8,"
        '"{""text"": ""\u0633\u0644\u0627\u0645"",\n'  # 9
        '""from"": ""customer""}"\n'  # 10
        f"{b},,,web,purchase,2026-11-01T10:00:00Z,,,i-9,\n"  # 11
        f"{missing},,,web,page_view,2026-11-01T10:00:00Z,,,i-10,\n"  # 12
        "not-a-uuid,,,web,page_view,2026-11-01T10:00:00Z,,,i-11,\n"  # 13
        f"{b},,,store,purchase,2026-11-03T12:00:00Z,1200,jpy,i-12,\n"  # 14
        f"{b},,,web,page_view,2026-11-03T12:00:00Z,,,i-1,\n"  # 15: external id seen on line 2
        f'{b},,,web,page_view,2026-11-03T12:00:00Z,,,i-13,"[1]"\n'  # 16
        f"{b},shop,C1,web,page_view,2026-11-03T12:00:00Z,,,i-14,\n"  # 17
    )


def test_interaction_csv_import_reports_bad_rows(
    vault: Vault, tmp_path: Path, shoppers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """Good rows land for customers named by id or by external id; bad ones are reported
    with their lines (after a multi-line payload too); re-importing adds nothing."""
    a, b = shoppers
    path = _write(tmp_path / "interactions.csv", _interactions_csv(b))
    report = import_interactions(vault, path)
    assert report == ImportReport(
        read=15,
        accepted=4,
        duplicates=1,
        rejected=[
            RowError(4, "occurred_at: must carry a time zone offset or Z"),
            RowError(5, "amount: has more decimals than the currency allows"),
            RowError(6, "currency: must be a three-letter ISO 4217 code"),
            RowError(7, "customer_external_id: names no known customer of that source"),
            RowError(8, f"channel: must be one of: {CHANNELS}"),
            RowError(11, "amount: is required for purchases and refunds"),
            RowError(12, "customer_id: names no known customer"),
            RowError(13, "customer_id: must be a UUID"),
            RowError(16, "payload: must be a JSON object"),
            RowError(17, "customer_id: give it, or source and customer_external_id, not both"),
        ],
    )
    first = _timeline(vault, a)
    assert [(i.external_id, i.payload) for i in first] == [
        ("i-8", {"text": "\u0633\u0644\u0627\u0645", "from": "customer"}),
        ("i-1", {"url": "/p/1"}),
    ]
    assert first[1].occurred_at == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    second = _timeline(vault, b)
    assert [(i.external_id, i.amount, i.currency) for i in second] == [
        ("i-12", Decimal("1200"), "JPY"),
        ("i-2", Decimal("19.99"), "EUR"),
    ]
    again = import_interactions(vault, path)
    assert (again.read, again.accepted, again.duplicates) == (15, 0, 5)
    assert again.rejected == report.rejected
    assert _count(vault, InteractionRow) == 4


def test_interaction_jsonl_import(
    vault: Vault, tmp_path: Path, shoppers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """JSONL rows take numbers or strings for amounts and objects for payloads."""
    a, b = shoppers
    path = _jsonl(
        tmp_path / "i.jsonl",
        [
            {"source": "shop", "customer_external_id": "C1", "channel": "app", "type": "purchase",
             "occurred_at": "2026-11-05T10:00:00Z", "amount": 19.99, "currency": "EUR",
             "external_id": "j-1", "payload": {"sku": "SKU-1", "qty": 2}},  # 1
            {"customer_id": str(b), "channel": "email", "type": "email_open",
             "occurred_at": "2026-11-05T10:00:00"},  # 2: naive
            {"customer_id": str(b), "channel": "email", "type": "email_open",
             "occurred_at": "2026-11-05T11:00:00+07:00", "payload": {"campaign": "x"}},  # 3
            {"customer_id": str(b), "channel": "web", "type": "purchase",
             "occurred_at": "2026-11-05T11:00:00Z", "amount": "12.345", "currency": "KWD"},  # 4
            {"customer_id": str(b), "channel": "web", "type": "purchase",
             "occurred_at": "2026-11-05T11:00:00Z", "amount": True, "currency": "EUR"},  # 5
            {"customer_id": str(b), "channel": "web", "type": "teleport",
             "occurred_at": "2026-11-05T11:00:00Z"},  # 6
            {"customer_id": str(b), "channel": "web", "type": "page_view",
             "occurred_at": "yesterday"},  # 7
            {"customer_id": str(b), "channel": "web", "type": "page_view",
             "occurred_at": "2026-11-05T11:00:00Z", "payload": {"url": "/x"}, "colour": "red"},  # 8
        ],
    )  # fmt: skip
    report = import_interactions(vault, path)
    assert report.rejected == [
        RowError(2, "occurred_at: must carry a time zone offset or Z"),
        RowError(5, "amount: must be a decimal number"),
        RowError(6, "type: must be one of: " + ", ".join(t for t in _TYPES)),
        RowError(7, "occurred_at: must be an ISO 8601 date and time"),
        RowError(8, "record: unknown key(s): colour"),
    ]
    assert (report.read, report.accepted, report.duplicates) == (8, 3, 0)
    bought = _timeline(vault, a)
    assert [(i.amount, i.currency, i.payload) for i in bought] == [
        (Decimal("19.99"), "EUR", {"sku": "SKU-1", "qty": 2})
    ]
    assert sorted((i.type.value, i.amount) for i in _timeline(vault, b)) == [
        ("email_open", None),
        ("purchase", Decimal("12.345")),
    ]


def test_rows_record_many_refuses_are_dropped_and_the_rest_recorded(
    vault: Vault, tmp_path: Path, shoppers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """A rule only the service checks (payload size) rejects just its rows; the batch is
    retried without them, so the good rows around them land."""
    _, b = shoppers
    big = {"blob": "x" * 70_000}
    rows: list[Any] = [
        {"customer_id": str(b), "channel": "web", "type": "page_view",
         "occurred_at": f"2026-11-05T11:00:{n:02d}Z", "external_id": f"k-{n}",
         "payload": big if n in (2, 4) else {"n": n}}
        for n in range(1, 7)
    ]  # fmt: skip
    report = import_interactions(vault, _jsonl(tmp_path / "big.jsonl", rows), batch_size=3)
    assert report == ImportReport(
        read=6,
        accepted=4,
        duplicates=0,
        rejected=[
            RowError(2, "payload: must be at most 65536 bytes as JSON"),
            RowError(4, "payload: must be at most 65536 bytes as JSON"),
        ],
    )
    assert sorted(i.external_id or "" for i in _timeline(vault, b)) == ["k-1", "k-3", "k-5", "k-6"]


def test_interaction_batches_commit_one_by_one(
    vault: Vault,
    tmp_path: Path,
    shoppers: tuple[uuid.UUID, uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure while writing the second batch leaves the first committed and the second out."""
    _, b = shoppers
    rows = [
        {"customer_id": str(b), "channel": "web", "type": "page_view",
         "occurred_at": "2026-11-05T11:00:00Z", "external_id": f"m-{n}"}
        for n in range(4)
    ]  # fmt: skip
    record_many = vault.interactions.record_many
    calls = {"n": 0}

    def failing(session: Any, items: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("connection lost")
        return record_many(session, items)

    monkeypatch.setattr(vault.interactions, "record_many", failing)
    with pytest.raises(RuntimeError):
        import_interactions(vault, _jsonl(tmp_path / "m.jsonl", rows), batch_size=2)
    assert sorted(i.external_id or "" for i in _timeline(vault, b)) == ["m-0", "m-1"]
