"""The values both copies hold: customers with all six PII fields (names and
addresses from several scripts) and interactions of every channel, from seeded
random generators so every run writes the same data."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from vault.customers import CustomerInput
from vault.customers.addresses import PostalAddress
from vault.interactions import InteractionInput

BATCH = 1000

FIRST_NAMES = (
    "Jane", "Ahmad", "Zoë", "Sara", "Łukasz", "Olivia", "Chidi", "Ingrid",
    "José", "Mei", "Reza", "Yuki", "محمد", "Анна", "Søren", "Priya",
)  # fmt: skip
LAST_NAMES = (
    "Doe", "Karimi", "Müller", "Nowak", "Tanaka", "Smith", "Okafor", "Larsen",
    "García", "Chen", "Rossi", "Dubois", "رضایی", "Иванова", "Ødegaard", "Patel",
)  # fmt: skip
STREETS = (  # (street, city, postal code, country): addresses in parts
    ("Baker Street", "London", "NW1 6XE", "GB"), ("Deansgate", "Manchester", "M3 4LQ", "GB"),
    ("Main Street", "Springfield", "62701", "US"), ("Hauptstraße", "Berlin", "10115", "DE"),
    ("خیابان ولیعصر", "تهران", "", "IR"), ("Rue de Rivoli", "Paris", "75001", "FR"),
    ("Via Roma", "Roma", "00184", "IT"),
)  # fmt: skip
PHONE_PREFIXES = ("+49151", "+44770", "+3361", "+98912", "+39347")
KINDS = (("web", "page_view", False), ("web", "cart_add", False), ("web", "purchase", True),
         ("email", "email_open", False), ("email", "email_click", False),
         ("app", "app_open", False), ("chat", "chat_message", False),
         ("store", "store_visit", False), ("store", "purchase", True),
         ("sms", "sms_click", False), ("web", "refund", True))  # fmt: skip


def _address(rng: random.Random) -> PostalAddress:
    number = rng.randint(1, 240)
    street, city, postal_code, country = rng.choice(STREETS)
    return PostalAddress(street=f"{number} {street}", city=city,
                         postal_code=postal_code or None, country=country)  # fmt: skip


def person(rng: random.Random, n: int) -> CustomerInput:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
    return CustomerInput(
        email=f"customer.{n}@{rng.choice(('example.com', 'example.org'))}",
        phone=f"{rng.choice(PHONE_PREFIXES)}{rng.randrange(10**7):07d}",
        first_name=first,
        last_name=last,
        birth_date=born,
        address=_address(rng),
        locale="en-GB",
        tier=rng.choice(("bronze", "silver", "gold")),
    )


def interaction_batch(
    batch: int, owners: Sequence[int], ids: Sequence[uuid.UUID], seed: int, now: datetime
) -> list[InteractionInput]:
    rng = random.Random(f"{seed}:{batch}")
    items = []
    for offset, owner in enumerate(owners):
        n = batch * BATCH + offset
        channel, kind, money = KINDS[rng.randrange(len(KINDS))]
        items.append(
            InteractionInput(
                customer_id=ids[owner],
                channel=channel,
                type=kind,
                occurred_at=now - timedelta(seconds=rng.randrange(365 * 86_400)),
                amount=Decimal(rng.randrange(100, 50_000)) / 100 if money else None,
                currency="EUR" if money else None,
                external_id=f"gql-{n}",
                payload={"url": f"/p/{rng.randrange(10_000)}", "ref": "newsletter", "n": n},
            )
        )
    return items
