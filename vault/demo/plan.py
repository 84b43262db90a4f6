"""Planning the demo dataset: from a customer count, a seed and "now", every customer and
a year of multi-channel history each, identically on every run.

:func:`plan_demo` is pure (only ids and nonces chosen while writing differ between runs).
Customers are keyed by the external id ``("shop", "C000001")``, ... and interactions by
``demo-{seed}-{customer}-{n}``, which is what makes loading idempotent. The cultures the
customers come from are in :mod:`vault.demo.cultures`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from vault.customers import CustomerInput, ExternalId
from vault.customers.addresses import PostalAddress
from vault.demo.cultures import CULTURE_WEIGHTS, CULTURES, Culture
from vault.interactions import InteractionInput
from vault.money import exponent
from vault.types import Channel, InteractionType

__all__ = ["DEMO_SOURCE", "HISTORY_DAYS", "DemoCustomer", "plan_customer", "plan_demo"]

DEMO_SOURCE: Final = "shop"
HISTORY_DAYS: Final = 365
_DAY = 86_400

_TIERS = ("bronze", "silver", "gold", "platinum")
_TIER_WEIGHTS = (55, 28, 13, 4)
_TAGS = ("newsletter", "vip", "app-user", "loyalty", "b2b", "early-adopter", "gift-buyer")
_DOMAINS = ("example.com", "example.org")
_SIGNUP = ("web", "app", "store", "referral")
_CATEGORIES = ("shoes", "bags", "outdoor", "kitchen", "books", "toys", "beauty", "garden")
_CAMPAIGNS = (
    "welcome-series", "spring-sale", "summer-clearance", "back-in-stock", "black-friday",
    "loyalty-bonus", "weekly-newsletter", "win-back",
)  # fmt: skip
_NETWORKS = ("instagram", "facebook", "tiktok", "x", "line", "wechat")
_CALL_TOPICS = ("order_status", "returns", "payment", "product_question", "complaint")
_REFUND_REASONS = ("wrong_size", "damaged", "changed_mind", "late_delivery")

# (name, weight, fewest, most interactions over the year)
_PROFILES = (
    ("dormant", 15, 5, 12),
    ("casual", 45, 12, 26),
    ("regular", 28, 28, 50),
    ("very_active", 12, 55, 100),
)
_SESSIONS = (
    ("browse_web", 30), ("browse_app", 14), ("email", 18), ("chat", 5), ("social", 8),
    ("call", 3), ("store", 6), ("survey", 3), ("sms", 4), ("push", 5),
)  # fmt: skip
_SESSION_NAMES = [s for s, _ in _SESSIONS]
_SESSION_WEIGHTS = [w for _, w in _SESSIONS]


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """One planned customer. Its interactions name it by ``external_id``."""

    index: int
    external_id: ExternalId
    data: CustomerInput
    interactions: tuple[InteractionInput, ...]


@dataclass(slots=True)
class _Event:
    offset: int  # seconds before "now"
    channel: Channel
    type: InteractionType
    payload: dict[str, Any]
    amount: Decimal | None = None
    currency: str | None = None


def plan_demo(customers: int, seed: int, now: datetime) -> Iterator[DemoCustomer]:
    """Customers 1..``customers`` of the dataset for ``seed``, lazily (constant memory)."""
    if customers < 0:
        raise ValueError("customers must not be negative")
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    for index in range(1, customers + 1):
        yield plan_customer(index, seed, now)


def plan_customer(index: int, seed: int, now: datetime) -> DemoCustomer:
    """Customer ``index`` (1-based) of the dataset for ``seed``; independent of the others."""
    rng = random.Random(f"cvault-demo:{seed}:{index}")  # noqa: S311 - repeatable, not secret
    # The first customers run through every culture once, so any load of a few dozen
    # customers shows every script; after that cultures follow their weights.
    if index <= len(CULTURES):
        culture = CULTURES[(index - 1 + seed) % len(CULTURES)]
    else:
        culture = rng.choices(CULTURES, weights=CULTURE_WEIGHTS)[0]
    first, first_ascii = rng.choice(culture.first)
    last, last_ascii = rng.choice(culture.last)
    local = ".".join(re.sub(r"[^a-z0-9]", "", part.lower()) for part in (first_ascii, last_ascii))
    email = f"{local}.{index}@{rng.choice(_DOMAINS)}"
    phone = _phone(rng, culture) if rng.random() < 0.85 else None
    birth = _birth_date(rng, now.date()) if rng.random() < 0.55 else None
    address = None
    if rng.random() < 0.4:
        street, city, postal_code = rng.choice(culture.addresses)
        address = PostalAddress(
            street=street.format(n=rng.randint(1, 240)), city=city,
            postal_code=postal_code or None, country=culture.locale.split("-")[1],
        )  # fmt: skip
    tier = rng.choices(_TIERS, weights=_TIER_WEIGHTS)[0]
    tags = sorted(rng.sample(_TAGS, k=rng.choice((0, 1, 1, 2, 2, 3))))
    if tier in ("gold", "platinum") and "vip" not in tags:
        tags.append("vip")
    profile, _, fewest, most = rng.choices(_PROFILES, weights=[p[1] for p in _PROFILES])[0]
    attributes: dict[str, Any] = {
        "demo_seed": seed,
        "signup_channel": rng.choice(_SIGNUP),
        "marketing_opt_in": rng.random() < 0.6,
        "activity": profile,
    }
    ref = ExternalId(DEMO_SOURCE, f"C{index:06d}")
    data = CustomerInput(
        email=email,
        phone=phone,
        first_name=first,
        last_name=last,
        birth_date=birth,
        address=address,
        locale=culture.locale,
        tier=tier,
        tags=tags,
        attributes=attributes,
        external_ids=(ref,),
    )
    events = _history(rng, culture, profile, rng.randint(fewest, most), f"{seed}-{index}")
    events.sort(key=lambda e: -e.offset)  # oldest first; ties keep their planned order
    interactions = tuple(
        InteractionInput(
            channel=e.channel.value,
            type=e.type.value,
            occurred_at=now - timedelta(seconds=e.offset),
            customer_source=ref.source,
            customer_external_id=ref.external_id,
            amount=e.amount,
            currency=e.currency,
            external_id=f"demo-{seed}-{index}-{n}",
            payload=e.payload,
        )
        for n, e in enumerate(events, start=1)
    )
    return DemoCustomer(index=index, external_id=ref, data=data, interactions=interactions)


def _phone(rng: random.Random, culture: Culture) -> str:
    digits = "".join(
        str(rng.randint(0, 9)) if c == "x" else str(rng.randint(1, 9)) if c == "n" else c
        for c in culture.mobile
    )
    return f"+{culture.dial}{digits}"


def _birth_date(rng: random.Random, today: date) -> date:
    return date(
        rng.randint(today.year - 80, today.year - 18), rng.randint(1, 12), rng.randint(1, 28)
    )


def _price(rng: random.Random, culture: Culture) -> Decimal:
    """An order value with exactly the currency's number of decimals (JPY none, KWD three)."""
    low, high = culture.price
    step = culture.price_step
    whole = rng.randint(low // step, high // step) * step
    places = exponent(culture.currency)
    fraction = 0
    if places > 0 and step == 1:
        fraction = rng.choice((0, 50, 90, 95, 99)) * 10**places // 100
    return Decimal(whole * 10**places + fraction).scaleb(-places)


def _history(
    rng: random.Random, culture: Culture, profile: str, target: int, order_prefix: str
) -> list[_Event]:
    """About ``target`` events within the last year; dormant customers stop > 60 days ago."""
    horizon = HISTORY_DAYS * _DAY
    if profile == "dormant":
        newest = rng.randint(61 * _DAY, 200 * _DAY)
        oldest = rng.randint(newest + 20 * _DAY, horizon)
    else:
        newest = 2 * 3600
        oldest = rng.randint(30 * _DAY, horizon)
    history = _History(rng, culture, newest, order_prefix)
    while len(history.events) < target:
        kind = rng.choices(_SESSION_NAMES, weights=_SESSION_WEIGHTS)[0]
        getattr(history, kind)(rng.randint(newest, oldest))
    return history.events


class _History:
    """Builds one customer's sessions. Times are seconds before "now", so later is smaller;
    a session started ``newest`` or more seconds ago ends well before "now"."""

    def __init__(self, rng: random.Random, culture: Culture, newest: int, prefix: str) -> None:
        self.rng = rng
        self.culture = culture
        self.newest = newest
        self.prefix = prefix
        self.orders = 0
        self.events: list[_Event] = []

    def add(
        self,
        at: int,
        channel: Channel,
        kind: InteractionType,
        payload: dict[str, Any],
        amount: Decimal | None = None,
    ) -> None:
        currency = None if amount is None else self.culture.currency
        self.events.append(_Event(at, channel, kind, payload, amount, currency))

    def browse_web(self, at: int) -> None:
        self._browse(at, Channel.WEB)

    def browse_app(self, at: int) -> None:
        self.add(at, Channel.APP, InteractionType.APP_OPEN, {"screen": "home"})
        self._browse(at, Channel.APP)

    def _browse(self, at: int, channel: Channel) -> None:
        """Page views, maybe a cart that ends in a purchase (rarely refunded) or is abandoned."""
        rng = self.rng
        for _ in range(rng.randint(1, 5)):
            at -= rng.randint(8, 300)
            url = rng.choice(
                ("/", f"/p/{rng.randint(100, 999)}", f"/c/{rng.choice(_CATEGORIES)}", "/search")
            )
            self.add(at, channel, InteractionType.PAGE_VIEW, {"url": url})
        if rng.random() >= 0.35:
            return
        item = {"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.choice((1, 1, 1, 2, 2, 3))}
        at -= rng.randint(20, 400)
        self.add(at, channel, InteractionType.CART_ADD, dict(item))
        at -= rng.randint(30, 900)
        if rng.random() >= 0.45:
            self.add(at, channel, InteractionType.CART_ABANDON, dict(item))
            return
        self.orders += 1
        order = f"O-{self.prefix}-{self.orders}"
        amount = _price(rng, self.culture)
        self.add(at, channel, InteractionType.PURCHASE, {"order": order, **item}, amount)
        refund_at = at - rng.randint(2 * _DAY, 20 * _DAY)
        if rng.random() < 0.06 and refund_at >= self.newest:
            reason = {"order": order, "reason": rng.choice(_REFUND_REASONS)}
            self.add(refund_at, channel, InteractionType.REFUND, reason, amount)

    def email(self, at: int) -> None:
        campaign = {"campaign": self.rng.choice(_CAMPAIGNS)}
        if self.rng.random() < 0.02:
            self.add(at, Channel.EMAIL, InteractionType.EMAIL_BOUNCE, campaign)
            return
        self.add(at, Channel.EMAIL, InteractionType.EMAIL_OPEN, campaign)
        if self.rng.random() < 0.4:
            click = {**campaign, "url": f"/p/{self.rng.randint(100, 999)}"}
            self.add(
                at - self.rng.randint(5, 600), Channel.EMAIL, InteractionType.EMAIL_CLICK, click
            )

    def chat(self, at: int) -> None:
        for _ in range(self.rng.randint(1, 3)):
            message = {"text": self.rng.choice(self.culture.chat), "from": "customer"}
            self.add(at, Channel.CHAT, InteractionType.CHAT_MESSAGE, message)
            at -= self.rng.randint(15, 240)

    def social(self, at: int) -> None:
        post = {"network": self.rng.choice(_NETWORKS), "post": f"post-{self.rng.randint(1, 400)}"}
        self.add(at, Channel.SOCIAL, InteractionType.SOCIAL_LIKE, post)
        if self.rng.random() < 0.2:
            self.add(
                at - self.rng.randint(5, 120), Channel.SOCIAL, InteractionType.SOCIAL_SHARE, post
            )

    def call(self, at: int) -> None:
        call = {
            "direction": self.rng.choice(("inbound", "inbound", "outbound")),
            "duration_s": self.rng.randint(30, 1500),
            "topic": self.rng.choice(_CALL_TOPICS),
        }
        self.add(at, Channel.PHONE, InteractionType.CALL, call)

    def store(self, at: int) -> None:
        store = {"store": f"{self.culture.locale}-{self.rng.randint(1, 12):02d}"}
        self.add(at, Channel.STORE, InteractionType.STORE_VISIT, store)
        if self.rng.random() < 0.5:
            receipt = {**store, "receipt": f"R-{self.rng.randint(100_000, 999_999)}"}
            amount = _price(self.rng, self.culture)
            at -= self.rng.randint(300, 2400)
            self.add(at, Channel.STORE, InteractionType.PURCHASE, receipt, amount)

    def survey(self, at: int) -> None:
        channel = self.rng.choice((Channel.EMAIL, Channel.WEB))
        answer = {"survey": "nps", "score": self.rng.randint(0, 10)}
        self.add(at, channel, InteractionType.SURVEY_RESPONSE, answer)

    def sms(self, at: int) -> None:
        campaign = {"campaign": self.rng.choice(_CAMPAIGNS)}
        self.add(at, Channel.SMS, InteractionType.SMS_CLICK, campaign)

    def push(self, at: int) -> None:
        campaign = {"campaign": self.rng.choice(_CAMPAIGNS)}
        self.add(at, Channel.PUSH, InteractionType.PUSH_OPEN, campaign)
