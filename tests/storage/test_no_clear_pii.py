"""No PII value is stored in clear: not in the SQLite file, not in a PostgreSQL dump."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import CTX, POSTGRES_URL
from vault.customers import CustomerInput, CustomerPatch
from vault.customers.addresses import PostalAddress
from vault.interactions import InteractionInput
from vault.runtime import Vault

PEOPLE = [
    CustomerInput(
        email="marguerite.yourcenar@example.org",
        phone="+33142685300",
        first_name="Marguerite",
        last_name="Yourcenarovska",
        birth_date="1953-06-08",
        address="27 Rue Quincampoix, Paris",
    ),
    CustomerInput(
        email="shirin.ebadi@example.com",
        phone="+989121234567",
        first_name="\u0634\u06cc\u0631\u06cc\u0646",
        last_name="\u0639\u0628\u0627\u062f\u06cc",
        address="\u062e\u06cc\u0627\u0628\u0627\u0646 \u0648\u0644\u06cc\u0639\u0635\u0631",
    ),
    CustomerInput(
        email="somchai.jaidee@example.net",
        phone="+66812345678",
        first_name="\u0e2a\u0e21\u0e0a\u0e32\u0e22",
        last_name="\u0e43\u0e08\u0e14\u0e35\u0e21\u0e32\u0e01",
    ),
    CustomerInput(
        email="wang.xiaoming@example.cn",
        phone="+8613812345678",
        first_name="\u5c0f\u660e",
        last_name="\u738b\u5927\u9f99",
        address=PostalAddress(
            street="\u671d\u9633\u533a\u5efa\u56fd\u8def88\u53f7",
            city="\u5317\u4eac\u5e02",
            postal_code="100022",
        ),
    ),
]
CHAT = "my secret order question about the blue umbrella"
UPDATED_EMAIL = "changed.address@example.org"
CANARY = "canary-tier-in-clear"


def _load(vault: Vault) -> list[str]:
    """Store known values and return every PII string that must not appear at rest."""
    with vault.unit(CTX) as s:
        made = [vault.customers.create(s, p) for p in PEOPLE]
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=made[0].id, channel="chat", type="chat_message",
                    occurred_at=datetime(2026, 11, 1, tzinfo=UTC), payload={"text": CHAT},
                )
            ],
        )  # fmt: skip
        vault.customers.update(s, made[1].id, CustomerPatch(email=UPDATED_EMAIL))
    values = [CHAT, UPDATED_EMAIL, "+33142685300", "1953-06-08"]
    for p in PEOPLE:
        values += [v for v in (p.email, p.first_name, p.last_name) if v]
        if isinstance(p.address, PostalAddress):  # each part on its own (digits alone
            values += [v for v in (p.address.street, p.address.city) if v]  # match by chance)
        elif p.address:
            values.append(p.address)
        values += [p.email.lower() for _ in [0] if p.email]
    return values


def _needles(values: list[str]) -> list[tuple[str, bytes]]:
    """Each value as UTF-8 bytes and as the hex a dump prints for bytea."""
    out = []
    for v in values:
        raw = v.encode("utf-8")
        out += [(v, raw), (v, raw.hex().encode())]
    return out


def _sqlite_bytes(vault: Vault) -> bytes:
    url = make_url(vault.settings.database_url)
    assert url.database is not None
    blobs = b""
    for suffix in ("", "-wal"):
        try:
            with open(url.database + suffix, "rb") as fh:  # noqa: PTH123
                blobs += fh.read()
        except FileNotFoundError:
            continue
    return blobs


def _postgres_dump(vault: Vault) -> bytes:
    pg_dump = shutil.which("pg_dump")
    assert pg_dump is not None, "pg_dump is required for this test"
    with vault.db.engine.connect() as conn:
        schema = conn.scalar(text("SELECT current_schema()"))
    url = make_url(POSTGRES_URL)
    return subprocess.run(
        [
            pg_dump, "--data-only", "--schema", str(schema), "-h", url.host or "127.0.0.1",
            "-p", str(url.port or 5432), "-U", url.username or "postgres", url.database or "test",
        ],
        check=True, capture_output=True,
    ).stdout  # fmt: skip


def test_no_pii_at_rest(vault: Vault) -> None:
    """The SQLite file and WAL, or a pg_dump of the schema, hold none of the PII values in
    clear (nor as bytea hex), while a clear attribute stored beside them is found: the scan
    sees the data."""
    values = _load(vault)
    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(tier=CANARY))
    stored = _sqlite_bytes(vault) if vault.db.dialect == "sqlite" else _postgres_dump(vault)
    assert CANARY.encode() in stored
    found = [v for v, needle in _needles(values) if needle in stored]
    assert found == []


ATTRIBUTE_CANARY = "قناری-canary-attribute"  # a clear attribute, in Persian, must be found


def test_no_pii_attribute_at_rest(vault: Vault) -> None:
    """PII custom attributes (Persian, Thai and Chinese names, a loyalty number, a date)
    are nowhere in clear at rest, neither as UTF-8 nor JSON-escaped, after a create and an
    update; a non-PII attribute stored beside them is found in both forms the scan knows."""
    values = ["شیرین عبادی", "สมชาย ใจดี", "王小明", "LN-0042-7781", "1999-12-31", "小龙女"]
    with vault.unit(CTX) as s:
        made = [
            vault.customers.create(
                s,
                CustomerInput(
                    attributes={"nickname": name, "favourite_colour": ATTRIBUTE_CANARY,
                                "loyalty_number": "LN-0042-7781", "anniversary": "1999-12-31"},
                ),
            )
            for name in values[:3]
        ]  # fmt: skip
        vault.customers.update(s, made[0].id, CustomerPatch(attributes={"nickname": "小龙女"}))
    stored = _sqlite_bytes(vault) if vault.db.dialect == "sqlite" else _postgres_dump(vault)
    escaped = json.dumps(ATTRIBUTE_CANARY)[1:-1].encode()
    assert ATTRIBUTE_CANARY.encode() in stored or escaped in stored
    needles = _needles(values) + [(v, json.dumps(v)[1:-1].encode()) for v in values]
    assert [v for v, needle in needles if needle in stored] == []
