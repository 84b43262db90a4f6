"""Demo data: multi-channel, multi-script, repeatable from a seed, idempotent to reload."""

from __future__ import annotations

import statistics
import unicodedata
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import phonenumbers
import pytest
from sqlalchemy import func, select

from tests.conftest import CTX, FrozenClock
from vault.config import Environment, Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer
from vault.customers import Customer
from vault.demo import DemoSummary, load_demo, plan_demo
from vault.demo import service as demo
from vault.money import exponent, to_minor
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import Base, CustomerRow, InteractionRow
from vault.types import Channel, InteractionType


def _customers(vault: Vault) -> list[Customer]:
    with vault.unit(CTX) as s:
        ids = list(s.scalars(select(CustomerRow.id)))
        return vault.customers.get_many(s, ids)


def _interaction_rows(vault: Vault) -> list[tuple[str, str, str, int | None, str | None]]:
    """(customer external id, channel, type, amount_minor, currency) for every interaction."""
    from vault.storage.models import CustomerExternalIdRow  # noqa: PLC0415

    with vault.unit(CTX) as s:
        rows = s.execute(
            select(
                CustomerExternalIdRow.external_id,
                InteractionRow.channel,
                InteractionRow.type,
                InteractionRow.amount_minor,
                InteractionRow.currency,
            ).join(
                CustomerExternalIdRow,
                CustomerExternalIdRow.customer_id == InteractionRow.customer_id,
            )
        ).all()
    return sorted((tuple(r) for r in rows), key=repr)  # type: ignore[misc]


def _count(vault: Vault, table: type[Base]) -> int:
    with vault.unit(CTX) as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _script(text: str) -> set[str]:
    """The first word of each letter's Unicode name: ARABIC, THAI, CJK, LATIN, ..."""
    return {unicodedata.name(ch).split()[0] for ch in text if ch.isalpha()}


def test_demo_loads_customers_with_multichannel_histories(vault: Vault) -> None:
    """N customers land, each with a history; interactions span >= 6 channels and >= 8 types."""
    summary = load_demo(vault, customers=30, seed=7)
    assert summary.customers == 30
    assert _count(vault, CustomerRow) == 30
    assert _count(vault, InteractionRow) == summary.interactions
    rows = _interaction_rows(vault)
    assert len(rows) == summary.interactions
    channels = {r[1] for r in rows}
    types = {r[2] for r in rows}
    assert len(channels) >= 6
    assert len(types) >= 8
    assert channels <= {c.value for c in Channel}
    assert types <= {t.value for t in InteractionType}
    assert {r[0] for r in rows} == {f"C{i:06d}" for i in range(1, 31)}


def test_demo_names_come_in_many_scripts_with_fitting_locales(vault: Vault) -> None:
    """Persian, Thai and Chinese names (among others) are stored exactly, with their locale."""
    load_demo(vault, customers=25, seed=7)
    customers = _customers(vault)
    by_locale = {c.locale: c for c in customers}
    persian = by_locale["fa-IR"]
    thai = by_locale["th-TH"]
    chinese = by_locale["zh-CN"]
    assert _script(f"{persian.first_name}{persian.last_name}") == {"ARABIC"}
    assert _script(f"{thai.first_name}{thai.last_name}") == {"THAI"}
    assert _script(f"{chinese.first_name}{chinese.last_name}") == {"CJK"}
    scripts = set().union(*(_script(f"{c.first_name}{c.last_name}") for c in customers))
    assert {"ARABIC", "THAI", "CJK", "LATIN", "CYRILLIC", "HANGUL", "DEVANAGARI"} <= scripts
    assert any(not (c.first_name or "").isascii() and "LATIN" in _script(c.first_name or "")
               for c in customers)  # fmt: skip
    for c in customers:
        assert c.email is not None
        assert c.email.isascii()
        assert c.email.rsplit("@", 1)[1] in ("example.com", "example.org")
        assert c.tier in ("bronze", "silver", "gold", "platinum")


def test_plan_is_a_pure_function_of_seed_and_now(clock: FrozenClock) -> None:
    """Two plans for one seed are equal in every field; another seed gives other people."""
    first = list(plan_demo(60, 7, clock.now))
    second = list(plan_demo(60, 7, clock.now))
    other = list(plan_demo(60, 8, clock.now))
    assert first == second
    assert [c.data.email for c in first] != [c.data.email for c in other]


def test_loads_of_one_seed_into_two_vaults_match(
    vault: Vault,
    clock: FrozenClock,
    session_keyring: Keyring,
    audit_signer: Ed25519Signer,
    tmp_path: Path,
) -> None:
    """Emails, names, interaction counts and amounts are identical between two loads."""
    url = f"sqlite:///{tmp_path / 'second' / 'vault.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    settings = Settings(
        data_dir=tmp_path / "second",
        database_url=url,
        keyring_path=tmp_path / "second" / "keyring.json",
        environment=Environment.TEST,
    )
    second = Vault.open(
        settings,
        keyring=session_keyring,
        database=Database(engine),
        signer=audit_signer,
        clock=clock,
    )
    try:
        a = load_demo(vault, customers=20, seed=11)
        b = load_demo(second, customers=20, seed=11)

        def people(v: Vault) -> list[tuple[str | None, str | None, str | None, str | None]]:
            return sorted((c.email, c.first_name, c.last_name, c.phone) for c in _customers(v))

        assert a == b
        assert people(vault) == people(second)
        assert _interaction_rows(vault) == _interaction_rows(second)
    finally:
        second.close()


def test_reloading_a_seed_adds_nothing(vault: Vault) -> None:
    """A second load of the same seed finds every customer and interaction already stored."""
    first = load_demo(vault, customers=12, seed=3)
    again = load_demo(vault, customers=12, seed=3)
    assert again == DemoSummary(customers=0, interactions=0)
    assert _count(vault, CustomerRow) == 12
    assert _count(vault, InteractionRow) == first.interactions


def test_growing_a_load_adds_only_the_new_customers(vault: Vault) -> None:
    """Loading more customers of the same seed keeps the first ones and adds the rest."""
    small = load_demo(vault, customers=5, seed=3)
    large = load_demo(vault, customers=8, seed=3)
    expected = sum(len(c.interactions) for c in plan_demo(8, 3, vault.clock()))
    assert large.customers == 3
    assert small.interactions + large.interactions == expected
    assert _count(vault, InteractionRow) == expected


def test_progress_is_reported_per_committed_chunk(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """progress(n) is called once per chunk with the number of customers in it."""
    monkeypatch.setattr(demo, "CHUNK_CUSTOMERS", 4)
    calls: list[int] = []
    load_demo(vault, customers=10, seed=7, progress=calls.append)
    assert calls == [4, 4, 2]


def test_plan_details_are_realistic(clock: FrozenClock) -> None:
    """Phones are possible E.164 numbers, emails unique, amounts have the currency's
    decimals, histories fit in the last year and activity varies (dormant and very active)."""
    now = clock.now
    plan = list(plan_demo(400, 7, now))
    emails = [c.data.email for c in plan]
    assert len(set(emails)) == len(plan)
    with_phone = [c.data.phone for c in plan if c.data.phone is not None]
    assert len(with_phone) > len(plan) // 2
    for phone in with_phone:
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_possible_number(number)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
    tiers = Counter(c.data.tier for c in plan)
    assert tiers["bronze"] > tiers["silver"] > tiers["gold"] > tiers["platinum"] > 0
    assert any(c.data.birth_date is not None for c in plan)
    assert any(c.data.address is not None for c in plan)
    counts = [len(c.interactions) for c in plan]
    assert 20 <= statistics.mean(counts) <= 40
    last_seen = [max(i.occurred_at for i in c.interactions) for c in plan]
    assert any(now - seen > timedelta(days=60) for seen in last_seen)
    assert max(counts) > 60
    ids = [i.external_id for c in plan for i in c.interactions]
    assert len(set(ids)) == len(ids)
    assert plan[0].interactions[0].external_id == "demo-7-1-1"
    currencies: set[str] = set()
    for c in plan:
        for i in c.interactions:
            assert now - timedelta(days=365) <= i.occurred_at <= now
            if i.type in ("purchase", "refund"):
                assert isinstance(i.amount, Decimal)
                assert i.currency is not None
                assert i.amount.as_tuple().exponent == -exponent(i.currency)
                assert to_minor(i.amount, i.currency) > 0
                currencies.add(i.currency)
            else:
                assert (i.amount, i.currency) == (None, None)
    assert {"EUR", "USD", "GBP", "JPY", "THB", "CNY"} <= currencies


def test_chat_text_is_in_the_customers_language(clock: FrozenClock) -> None:
    """Chat messages of a Thai customer are Thai, of a Chinese customer Chinese."""
    plan = list(plan_demo(40, 7, clock.now))
    wanted = {"th-TH": "THAI", "zh-CN": "CJK", "fa-IR": "ARABIC"}
    seen: dict[str, set[str]] = {}
    for c in plan:
        if c.data.locale in wanted:
            for i in c.interactions:
                if i.type == "chat_message" and i.payload is not None:
                    seen.setdefault(c.data.locale, set()).update(_script(i.payload["text"]))
    assert seen
    for locale, scripts in seen.items():
        assert scripts == {wanted[locale]}
