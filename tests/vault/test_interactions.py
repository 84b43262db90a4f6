"""Interactions: bulk idempotent ingest, whole-batch atomicity, timeline pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.conftest import CTX, FrozenClock
from vault.customers import Customer, CustomerInput, ExternalId
from vault.errors import InvalidInput
from vault.interactions import MAX_BATCH, InteractionInput
from vault.runtime import Vault
from vault.storage.models import InteractionRow
from vault.types import Channel, InteractionType

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _customer(vault: Vault, **kwargs: object) -> Customer:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(**kwargs))  # type: ignore[arg-type]


def _count(vault: Vault) -> int:
    with vault.unit(CTX) as s:
        return int(s.scalar(select(func.count()).select_from(InteractionRow)) or 0)


def _view(customer_id: uuid.UUID, n: int, **kw: object) -> InteractionInput:
    return InteractionInput(
        customer_id=customer_id,
        channel="web",
        type="page_view",
        occurred_at=T0 + timedelta(minutes=n),
        external_id=f"ev-{n}",
        payload={"url": f"/p/{n}"},
        **kw,  # type: ignore[arg-type]
    )


def test_batch_is_idempotent_on_external_id(vault: Vault) -> None:
    """Sending the same batch twice stores each interaction once and counts duplicates."""
    c = _customer(vault, first_name="Ana")
    batch = [_view(c.id, n) for n in range(50)]
    with vault.unit(CTX) as s:
        first = vault.interactions.record_many(s, batch)
    with vault.unit(CTX) as s:
        second = vault.interactions.record_many(s, batch)
    assert (first.inserted, first.duplicates) == (50, 0)
    assert (second.inserted, second.duplicates) == (0, 50)
    assert _count(vault) == 50


def test_duplicates_inside_one_batch_keep_the_first(vault: Vault) -> None:
    """Two items with one external id in a batch store only the first."""
    c = _customer(vault)
    a = _view(c.id, 1)
    b = InteractionInput(
        customer_id=c.id, channel="app", type="app_open", occurred_at=T0, external_id="ev-1"
    )
    with vault.unit(CTX) as s:
        result = vault.interactions.record_many(s, [a, b])
    with vault.unit(CTX) as s:
        page = vault.interactions.timeline(s, c.id)
    assert (result.inserted, result.duplicates) == (1, 1)
    assert [i.channel for i in page.items] == [Channel.WEB]


def test_a_bad_item_rejects_the_whole_batch(vault: Vault) -> None:
    """One invalid item raises with its index, and no item of the batch is stored."""
    c = _customer(vault)
    batch = [_view(c.id, n) for n in range(10)]
    batch[7] = InteractionInput(
        customer_id=c.id, channel="web", type="purchase", occurred_at=T0, external_id="x"
    )
    with pytest.raises(InvalidInput) as info, vault.unit(CTX) as s:
        vault.interactions.record_many(s, batch)
    assert info.value.field == "interactions[7].amount"
    assert _count(vault) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "fax"}, "interactions[0].channel"),
        ({"type": "teleport"}, "interactions[0].type"),
        ({"occurred_at": datetime(2026, 1, 1)}, "interactions[0].occurredAt"),  # noqa: DTZ001
        ({"amount": Decimal("1.999"), "currency": "EUR"}, "interactions[0].amount"),
        ({"amount": Decimal(5), "currency": "EURO"}, "interactions[0].currency"),
        ({"customer_id": uuid.UUID(int=1)}, "interactions[0].customerId"),
        ({"payload": {"x": float("inf")}}, "interactions[0].payload"),
    ],
)
def test_invalid_items_name_the_path(vault: Vault, change: dict[str, object], field: str) -> None:
    """Each validation rule raises InvalidInput naming the item and field."""
    c = _customer(vault)
    base = {
        "customer_id": c.id,
        "channel": "web",
        "type": "page_view",
        "occurred_at": T0,
    }
    item = InteractionInput(**{**base, **change})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as info, vault.unit(CTX) as s:
        vault.interactions.record_many(s, [item])
    assert info.value.field == field


def test_batch_size_is_capped(vault: Vault) -> None:
    """More than MAX_BATCH items in one call is refused before any work."""
    c = _customer(vault)
    with pytest.raises(InvalidInput), vault.unit(CTX) as s:
        vault.interactions.record_many(s, [_view(c.id, n) for n in range(MAX_BATCH + 1)])


def test_amounts_keep_the_currency_minor_unit(vault: Vault) -> None:
    """Amounts come back as exact decimals: two places for EUR, none for JPY."""
    c = _customer(vault)
    items = [
        InteractionInput(
            customer_id=c.id, channel="web", type="purchase", occurred_at=T0,
            amount=Decimal("19.99"), currency="eur",
        ),
        InteractionInput(
            customer_id=c.id, channel="store", type="purchase", occurred_at=T0 + timedelta(hours=1),
            amount=Decimal(1200), currency="JPY",
        ),
    ]  # fmt: skip
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, items)
        page = vault.interactions.timeline(s, c.id)
    assert [(i.amount, i.currency) for i in page.items] == [
        (Decimal(1200), "JPY"),
        (Decimal("19.99"), "EUR"),
    ]


def test_customer_named_by_external_id(vault: Vault) -> None:
    """An item may name its customer by source and external id instead of the vault id."""
    c = _customer(vault, external_ids=[ExternalId("pos", "A-17")])
    item = InteractionInput(
        customer_source="pos", customer_external_id="A-17", channel="store",
        type="store_visit", occurred_at=T0,
    )  # fmt: skip
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, [item])
        page = vault.interactions.timeline(s, c.id)
    assert [i.type for i in page.items] == [InteractionType.STORE_VISIT]


def test_payload_round_trips_in_any_script(vault: Vault) -> None:
    """Chat text in Persian, Thai and Chinese comes back exactly."""
    c = _customer(vault)
    text = "\u0633\u0644\u0627\u0645 \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35 \u4f60\u597d"
    item = InteractionInput(
        customer_id=c.id, channel="chat", type="chat_message", occurred_at=T0,
        payload={"text": text, "n": 3},
    )  # fmt: skip
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, [item])
        page = vault.interactions.timeline(s, c.id)
    assert page.items[0].payload == {"text": text, "n": 3}


def test_timeline_pages_newest_first_without_gaps(vault: Vault) -> None:
    """Walking the cursor visits every interaction once, newest first, including ties."""
    c = _customer(vault)
    items = [_view(c.id, n) for n in range(25)]
    items += [
        InteractionInput(
            customer_id=c.id,
            channel="email",
            type="email_open",
            occurred_at=T0,
            external_id=f"t{n}",
        )
        for n in range(5)
    ]  # five share one timestamp
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, items)
    seen: list[uuid.UUID] = []
    stamps: list[datetime] = []
    after = None
    while True:
        with vault.unit(CTX) as s:
            page = vault.interactions.timeline(s, c.id, first=7, after=after)
        seen += [i.id for i in page.items]
        stamps += [i.occurred_at for i in page.items]
        if not page.has_next_page:
            break
        after = page.end_cursor
    assert len(seen) == len(set(seen)) == 30
    assert stamps == sorted(stamps, reverse=True)


def test_timeline_filters(vault: Vault) -> None:
    """channel, type, since (inclusive) and until (exclusive) narrow the timeline."""
    c = _customer(vault)
    items = [_view(c.id, n) for n in range(10)]
    items.append(
        InteractionInput(customer_id=c.id, channel="email", type="email_click", occurred_at=T0)
    )
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, items)
        web = vault.interactions.timeline(s, c.id, channel="web", first=100)
        clicks = vault.interactions.timeline(s, c.id, type="email_click")
        window = vault.interactions.timeline(
            s, c.id, since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5)
        )
    assert len(web.items) == 10
    assert [i.type for i in clicks.items] == [InteractionType.EMAIL_CLICK]
    assert [i.external_id for i in window.items] == ["ev-4", "ev-3", "ev-2"]


def test_bad_cursor_is_a_clear_error(vault: Vault) -> None:
    """A cursor this API did not hand out is refused with InvalidInput on 'after'."""
    c = _customer(vault)
    with pytest.raises(InvalidInput) as info, vault.unit(CTX) as s:
        vault.interactions.timeline(s, c.id, after="not-a-cursor")
    assert info.value.field == "after"


def test_merge_moves_interactions_and_loses_nothing(vault: Vault, clock: FrozenClock) -> None:
    """Merging moves every interaction (payloads still open), fills empty fields, and the
    merged id redirects to the kept customer; later ingest for the old id lands there too."""
    keep = _customer(vault, email="kim@example.com", first_name="Kim")
    dupe = _customer(
        vault, email="kim.old@example.com", phone="+4915112345678", last_name="\u6a0b",
        external_ids=[ExternalId("crm", "77")], tags=["old"],
    )  # fmt: skip
    with vault.unit(CTX) as s:
        vault.interactions.record_many(s, [_view(keep.id, n) for n in range(3)])
        vault.interactions.record_many(s, [_view(dupe.id, n) for n in range(3, 8)])
    clock.advance(hours=1)
    with vault.unit(CTX) as s:
        result = vault.customers.merge(s, keep.id, dupe.id)
    assert result.moved_interactions == 5
    assert result.filled_fields == ["phone", "last_name"]
    merged = result.customer
    assert (merged.email, merged.phone, merged.last_name) == (
        "kim@example.com",
        "+4915112345678",
        "\u6a0b",
    )
    assert merged.external_ids == [ExternalId("crm", "77")]
    assert merged.tags == ["old"]
    with vault.unit(CTX) as s:
        page = vault.interactions.timeline(s, keep.id, first=100)
        assert len(page.items) == 8
        assert {i.payload["url"] for i in page.items if i.payload} == {f"/p/{n}" for n in range(8)}
        assert vault.customers.get(s, dupe.id).id == keep.id
        assert [c.id for c in vault.customers.find_by_phone(s, "+4915112345678")] == [keep.id]
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=dupe.id, channel="app", type="app_open", occurred_at=clock.now
                )
            ],
        )
        assert len(vault.interactions.timeline(s, keep.id, first=100).items) == 9
        assert vault.interactions.timeline(s, dupe.id).items == []


def test_merge_refuses_self_and_merged(vault: Vault) -> None:
    """A customer cannot be merged into itself, nor can a merged record be merged again."""
    a = _customer(vault)
    b = _customer(vault)
    with pytest.raises(InvalidInput), vault.unit(CTX) as s:
        vault.customers.merge(s, a.id, a.id)
    with vault.unit(CTX) as s:
        vault.customers.merge(s, a.id, b.id)
    with pytest.raises(InvalidInput), vault.unit(CTX) as s:
        vault.customers.merge(s, a.id, b.id)


def test_storage_skips_an_external_id_that_appears_between_check_and_write(
    vault: Vault, clock: FrozenClock
) -> None:
    """If a concurrent writer stores an external id after the pre-check, the insert still
    lands every other row exactly once (PostgreSQL: COPY fails, the staging-table path
    with ON CONFLICT takes over; SQLite: ON CONFLICT DO NOTHING)."""
    c = _customer(vault)
    now = clock.now

    def row(n: int, ext: str) -> dict[str, object]:
        return {
            "id": uuid.uuid4(), "customer_id": c.id, "channel": "web", "type": "page_view",
            "occurred_at": now, "amount_minor": None, "currency": None, "external_id": ext,
            "payload_ct": None, "recorded_at": now,
        }  # fmt: skip

    # Two rows share an external id, as if another writer had raced us to it.
    rows = [row(0, "race-1"), row(1, "race-1"), row(2, "race-2")]
    with vault.unit(CTX) as s:
        inserted = vault.interactions._insert(s, rows)
    with vault.unit(CTX) as s:
        page = vault.interactions.timeline(s, c.id)
    assert inserted == 2
    assert sorted(i.external_id or "" for i in page.items) == ["race-1", "race-2"]
