"""Sequence conditions on SQLite and PostgreSQL: "A, then B within D (then C ...)" and
"A, then no B within D" select exactly the customers a plain Python reading of the
documented semantics selects (generated timelines heavy on the edges: exactly D after,
one second or microsecond over, the same instant, before), in both compiled shapes;
the edges one by one; membership with consent, enter and leave events, and the ingest
hook with the new condition."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from consent import Privacy
from tests.conftest import CTX, FrozenClock
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.segments.parse import parse_rule
from vault.storage.models import SegmentOutboxRow

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)
EMAIL = AccessContext(Actor("marketing-1", "marketing"), "marketing_email")
GAP_SECONDS = {"days": 86_400, "hours": 3_600, "minutes": 60}


class Interaction(Protocol):
    """What the reference reads of an interaction (the tests' own records)."""

    @property
    def type(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


@dataclass(frozen=True)
class Event:
    type: str
    channel: str
    occurred_at: datetime


# -- the reference: the documented semantics read plainly --------------------------------


def in_window(at: datetime, window: Any, now: datetime) -> bool:
    """The documented windows (docs/segments.md)."""
    if window == "ever":
        return at <= now
    if "within_days" in window:
        return bool(now - window["within_days"] * DAY <= at <= now)
    if "since" in window:
        return bool(datetime.fromisoformat(window["since"]) <= at <= now)
    near, far = window["between_days"]
    return bool(now - far * DAY <= at < now - near * DAY)


def _matches(step: dict[str, Any], event: Interaction) -> bool:
    return (not step.get("types") or event.type in step["types"]) and (
        not step.get("channels") or event.channel in step["channels"]
    )


def sequence_holds(body: dict[str, Any], events: Sequence[Interaction], now: datetime) -> bool:
    """Whether a customer with these interactions meets the sequence ``body``: a chain of
    different interactions, one per present step, the first inside the window, each next
    one at or up to D after the previous, none after now; with an absent last step, the D
    after the chain's last one has passed and no other interaction of that step lies in
    it. Tried over every chain."""
    ((unit, amount),) = body["within"].items()
    gap = timedelta(seconds=GAP_SECONDS[unit] * amount)
    steps = body["steps"]
    absent = steps[-1] if steps[-1].get("absent") else None
    present = steps[:-1] if absent else steps

    def extend(chain: list[int]) -> bool:
        if len(chain) == len(present):
            if absent is None:
                return True
            last = events[chain[-1]].occurred_at
            if last + gap > now:
                return False
            return not any(
                j not in chain and _matches(absent, e) and last <= e.occurred_at <= last + gap
                for j, e in enumerate(events)
            )
        step = present[len(chain)]
        for j, e in enumerate(events):
            if j in chain or not _matches(step, e) or e.occurred_at > now:
                continue
            if not chain and not in_window(e.occurred_at, body["window"], now):
                continue
            if chain:
                previous = events[chain[-1]].occurred_at
                if not previous <= e.occurred_at <= previous + gap:
                    continue
            if extend([*chain, j]):
                return True
        return False

    return extend([])


# -- helpers ------------------------------------------------------------------------------


def sequence(
    *steps: dict[str, Any], within: dict[str, int], window: Any = "ever"
) -> dict[str, Any]:
    return {"sequence": {"steps": list(steps), "within": within, "window": window}}


def _customers(vault: Vault, n: int) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [vault.customers.create(s, CustomerInput()).id for _ in range(n)]


def _record(vault: Vault, timelines: dict[uuid.UUID, list[Event]]) -> None:
    items = []
    for cid, events in timelines.items():
        for e in events:
            paid = e.type in ("purchase", "refund")
            items.append(
                InteractionInput(customer_id=cid, channel=e.channel, type=e.type,
                                 occurred_at=e.occurred_at,
                                 amount=Decimal("10.00") if paid else None,
                                 currency="EUR" if paid else None)
            )  # fmt: skip
    if items:
        with vault.unit(CTX) as s:
            vault.interactions.record_many(s, items)


def _selected(
    vault: Vault, rule: dict[str, Any], ids: list[uuid.UUID]
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """(the full shape's answer among ``ids``, the batch shape's answer for ``ids``)."""
    parsed = parse_rule(rule)
    with vault.unit(CTX) as s:
        full = set(s.scalars(vault.segments.statement(s, parsed))) & set(ids)
        batch = set(s.scalars(vault.segments.statement(s, parsed, among=ids)))
    return full, batch


def _one(vault: Vault, rule: dict[str, Any], *events: Event) -> bool:
    """Whether a new customer with these interactions matches ``rule`` (both shapes agree)."""
    (cid,) = _customers(vault, 1)
    _record(vault, {cid: list(events)})
    full, batch = _selected(vault, rule, [cid])
    assert full == batch
    return cid in full


ABANDONED = sequence(
    {"types": ["cart_abandon"]}, {"types": ["purchase"], "absent": True}, within={"days": 2}
)
FOLLOWED = sequence({"types": ["cart_abandon"]}, {"types": ["purchase"]}, within={"days": 2})


# -- the edges one by one -----------------------------------------------------------------


def test_the_next_step_may_come_exactly_d_later_and_not_a_moment_more(vault: Vault) -> None:
    """A purchase exactly 2 days after the abandoned cart follows it; one second or one
    microsecond later does not; an hour later does."""
    t = vault.clock() - 10 * DAY
    cart = Event("cart_abandon", "web", t)
    outcomes = {
        label: _one(vault, FOLLOWED, cart, Event("purchase", "web", t + offset))
        for label, offset in [("1 h", timedelta(hours=1)), ("exactly D", 2 * DAY),
                              ("D + 1 us", 2 * DAY + MICRO), ("D + 1 s", 2 * DAY + SECOND)]
    }  # fmt: skip
    expected = {"1 h": True, "exactly D": True, "D + 1 us": False, "D + 1 s": False}
    assert expected == outcomes


def test_the_same_instant_is_after_and_an_earlier_interaction_never_is(vault: Vault) -> None:
    """A purchase at the very instant of the cart follows it; one a second before it does
    not."""
    t = vault.clock() - 10 * DAY
    cart = Event("cart_abandon", "web", t)
    same = _one(vault, FOLLOWED, cart, Event("purchase", "web", t))
    before = _one(vault, FOLLOWED, cart, Event("purchase", "web", t - SECOND))
    expected = (True, False)
    assert expected == (same, before)


def test_then_no_purchase_within_d_has_the_same_edges(vault: Vault) -> None:
    """ "No purchase within 2 days after it": a purchase at the same instant or exactly 2
    days later cancels the cart; one 2 days and a second later, or one before the cart,
    does not; a cart without any purchase matches."""
    t = vault.clock() - 10 * DAY
    cart = Event("cart_abandon", "web", t)
    outcomes = {
        label: _one(vault, ABANDONED, cart, *([Event("purchase", "web", t + offset)]
                                               if offset is not None else []))
        for label, offset in [("none", None), ("same instant", timedelta(0)),
                              ("exactly D", 2 * DAY), ("D + 1 s", 2 * DAY + SECOND),
                              ("1 s before", -SECOND)]
    }  # fmt: skip
    expected = {"none": True, "same instant": False, "exactly D": False, "D + 1 s": True,
                "1 s before": True}  # fmt: skip
    assert expected == outcomes


def test_then_no_purchase_holds_once_d_has_passed(vault: Vault, clock: FrozenClock) -> None:
    """A cart abandoned less than 2 days ago has not yet gone 2 days without a purchase:
    the customer matches from the instant the 2 days are over."""
    (cid,) = _customers(vault, 1)
    _record(vault, {cid: [Event("cart_abandon", "web", clock.now - 2 * DAY + SECOND)]})
    before = _selected(vault, ABANDONED, [cid])
    clock.advance(seconds=1)
    at_d = _selected(vault, ABANDONED, [cid])
    assert ((set(), set()), ({cid}, {cid})) == (before, at_d)


def test_a_step_needs_an_interaction_of_its_own(vault: Vault) -> None:
    """ "A page view, then a page view within an hour" needs two page views (also at one
    instant); "a page view, then no page view within an hour" is not cancelled by the
    page view itself."""
    t = vault.clock() - DAY
    view = {"types": ["page_view"]}
    twice = sequence(view, view, within={"hours": 1})
    last_view = sequence(view, {**view, "absent": True}, within={"hours": 1})
    alone = _one(vault, twice, Event("page_view", "web", t))
    pair = _one(vault, twice, Event("page_view", "web", t), Event("page_view", "app", t))
    single = _one(vault, last_view, Event("page_view", "web", t))
    expected = (False, True, True)
    assert expected == (alone, pair, single)


def test_the_window_selects_the_first_step_and_channels_filter_each_step(vault: Vault) -> None:
    """between_days [3, 30] holds the cart (older than 3 days), not the purchase after it;
    a channel filter on a step excludes interactions on other channels."""
    t = vault.clock() - 3 * DAY - SECOND
    rule = sequence({"types": ["cart_abandon"], "channels": ["web"]},
                    {"types": ["purchase"], "channels": ["app"]},
                    within={"days": 2}, window={"between_days": [3, 30]})  # fmt: skip
    inside = _one(vault, rule, Event("cart_abandon", "web", t), Event("purchase", "app", t + DAY))
    wrong_channel = _one(
        vault, rule, Event("cart_abandon", "web", t), Event("purchase", "web", t + DAY)
    )
    too_recent = _one(
        vault, rule, Event("cart_abandon", "web", t + 2 * SECOND), Event("purchase", "app", t + DAY)
    )
    expected = (True, False, False)
    assert expected == (inside, wrong_channel, too_recent)


def test_a_sequence_may_start_on_the_first_instant_of_its_window(vault: Vault) -> None:
    """within_days 3 and a cart exactly 3 days old: a purchase a second later follows it
    (and cancels it for "then no purchase"); a cart a microsecond older is outside."""
    start = vault.clock() - 3 * DAY
    window = {"within_days": 3}
    followed = {"sequence": {**FOLLOWED["sequence"], "window": window}}
    abandoned = {"sequence": {**ABANDONED["sequence"], "window": window}}
    outcomes = [
        _one(vault, rule, Event("cart_abandon", "web", at), Event("purchase", "web", at + SECOND))
        for rule in (followed, abandoned)
        for at in (start, start - MICRO)
    ]
    expected = [True, False, False, False]
    assert expected == outcomes


def test_a_chain_of_three_steps_each_within_d_of_the_previous(vault: Vault) -> None:
    """Browse, then add to cart, then purchase, each within an hour of the step before:
    a purchase 1 h after the cart but 2 h after the view still counts; a cart 61 minutes
    after the view does not."""
    t = vault.clock() - DAY
    rule = sequence({"types": ["page_view"]}, {"types": ["cart_add"]}, {"types": ["purchase"]},
                    within={"hours": 1})  # fmt: skip
    chained = _one(vault, rule, Event("page_view", "web", t),
                   Event("cart_add", "web", t + timedelta(hours=1)),
                   Event("purchase", "web", t + timedelta(hours=2)))  # fmt: skip
    broken = _one(vault, rule, Event("page_view", "web", t),
                  Event("cart_add", "web", t + timedelta(minutes=61)),
                  Event("purchase", "web", t + timedelta(minutes=62)))  # fmt: skip
    expected = (True, False)
    assert expected == (chained, broken)


# -- generated timelines against the reference ----------------------------------------------

KINDS = ["cart_abandon", "purchase", "page_view", "cart_add"]
CHANNELS = ["web", "app"]
GAPS = [{"hours": 1}, {"days": 2}, {"minutes": 90}]


def _windows(now: datetime) -> list[Any]:
    return ["ever", {"within_days": 3}, {"within_days": 10}, {"between_days": [1, 5]},
            {"since": (now - 4 * DAY).isoformat()}]  # fmt: skip


@st.composite
def _step(draw: st.DrawFn) -> dict[str, Any]:
    step: dict[str, Any] = {}
    types = draw(st.lists(st.sampled_from(KINDS), max_size=2, unique=True))
    channels = draw(st.lists(st.sampled_from(CHANNELS), max_size=1, unique=True))
    if types:
        step["types"] = types
    if channels:
        step["channels"] = channels
    return step


@st.composite
def _timeline(
    draw: st.DrawFn, now: datetime, gap: timedelta, steps: list[dict[str, Any]]
) -> list[Event]:
    """Up to 6 interactions, most of a kind and channel some step asks for, most placed
    on an edge of another one (same instant, exactly D after, a second or a microsecond
    either side of D, just before) or of now and the windows; the rest anywhere in the
    last 12 days (a few in the future)."""
    relative = [timedelta(0), gap, gap + MICRO, gap - MICRO, gap + SECOND, gap - SECOND,
                -SECOND, -MICRO, gap / 2, 2 * gap]  # fmt: skip
    from_now = [gap, gap - MICRO, gap + MICRO, timedelta(0), -SECOND, 3 * DAY, DAY, 5 * DAY,
                4 * DAY, 10 * DAY]  # fmt: skip
    events: list[Event] = []
    for _ in range(draw(st.integers(0, 6))):
        step = draw(st.sampled_from([*steps, {}]))
        kind = draw(st.sampled_from(step.get("types") or KINDS))
        channel = draw(st.sampled_from(step.get("channels") or CHANNELS))
        how = draw(st.integers(0, 3))
        if events and how >= 2:
            base = draw(st.sampled_from(events)).occurred_at
            at = base + draw(st.sampled_from(relative))
        elif how == 1:
            at = now - draw(st.sampled_from(from_now))
        else:
            at = now - timedelta(seconds=draw(st.integers(-3_600, 12 * 86_400)))
        events.append(Event(kind, channel, at))
    return events


@dataclass
class Case:
    rule: dict[str, Any]
    timelines: list[list[Event]]


@st.composite
def _cases(draw: st.DrawFn, now: datetime) -> Case:
    within = draw(st.sampled_from(GAPS))
    ((unit, amount),) = within.items()
    gap = timedelta(seconds=GAP_SECONDS[unit] * amount)
    steps = draw(st.lists(_step(), min_size=2, max_size=3))
    if draw(st.booleans()):
        steps[-1] = {**steps[-1], "absent": True}
    rule = sequence(*steps, within=within, window=draw(st.sampled_from(_windows(now))))
    if draw(st.integers(0, 4)) == 0:
        rule = {"not": rule}
    timelines = draw(st.lists(_timeline(now, gap, steps), min_size=1, max_size=3))
    return Case(rule, timelines)


def _expected(rule: dict[str, Any], events: list[Event], now: datetime) -> bool:
    if "not" in rule:
        return not sequence_holds(rule["not"]["sequence"], events, now)
    return sequence_holds(rule["sequence"], events, now)


def test_generated_sequences_select_what_the_reference_selects(vault: Vault) -> None:
    """For generated rules (2-3 steps, types and channels or none, an absent last step or
    not, every kind of window, sometimes under a not) over generated timelines, the full
    shape and the batch shape both select exactly the customers the reference selects."""
    now = vault.clock()
    seen = {"matched": 0, "unmatched": 0}

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(_cases(now))
    def check(case: Case) -> None:
        ids = _customers(vault, len(case.timelines))
        timelines = dict(zip(ids, case.timelines, strict=True))
        _record(vault, timelines)
        expected = {c for c, events in timelines.items() if _expected(case.rule, events, now)}
        full, batch = _selected(vault, case.rule, ids)
        assert (expected, expected) == (full, batch)
        seen["matched"] += len(expected)
        seen["unmatched"] += len(ids) - len(expected)

    check()
    assert min(seen.values()) >= 20  # the cases exercise both answers, not one


# -- membership, consent and the ingest hook ------------------------------------------------


def _events(vault: Vault, segment_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    with vault.unit(CTX) as s:
        rows = s.execute(
            select(SegmentOutboxRow.customer_id, SegmentOutboxRow.event)
            .where(SegmentOutboxRow.segment_id == segment_id)
            .order_by(SegmentOutboxRow.id)
        ).all()
    return [(r.customer_id, r.event) for r in rows]


def test_abandoned_carts_enter_and_leave_with_consent_and_late_purchases(
    vault: Vault, clock: FrozenClock
) -> None:
    """ "Abandoned a cart in the last 30 days, no purchase within 2 days after it, consented
    to e-mail": a refresh lets in the consenting customer whose 2 days are over (not the
    one who bought, not the one without consent, not yet the recent cart); once its 2
    days pass, the recent cart enters; a purchase recorded late, inside the 2 days, takes
    its customer out at ingest; a withdrawal hides a member at once and it leaves at the
    next refresh. Every entry and leave is one outbox event."""
    lapsed, bought, silent, recent = _customers(vault, 4)
    now = clock.now
    _record(vault, {
        lapsed: [Event("cart_abandon", "web", now - 3 * DAY)],
        bought: [Event("cart_abandon", "web", now - 3 * DAY),
                 Event("purchase", "app", now - 2 * DAY)],
        silent: [Event("cart_abandon", "web", now - 3 * DAY)],
        recent: [Event("cart_abandon", "web", now - DAY)],
    })  # fmt: skip
    ledger = Privacy.of(vault).ledger
    rule = {"all": [sequence({"types": ["cart_abandon"]}, {"types": ["purchase"], "absent": True},
                             within={"days": 2}, window={"within_days": 30}),
                    {"consent": {"purpose": "marketing_email"}}]}  # fmt: skip
    with vault.unit(CTX) as s:
        for cid in (lapsed, bought, recent):
            ledger.grant(s, cid, "marketing_email")
        seg = vault.segments.create(s, name="abandoned", definition=rule)
        (first,) = vault.segments.refresh(s, seg.id)
    assert (first.members, first.entered, first.left) == (1, 1, 0)
    clock.advance(days=1)
    with vault.unit(CTX) as s:
        (second,) = vault.segments.refresh(s, seg.id)
    assert (second.members, second.entered, second.left) == (2, 1, 0)
    _record(vault, {lapsed: [Event("purchase", "web", clock.now - 3 * DAY)]})  # a day after
    with vault.unit(EMAIL) as s:
        assert [recent] == vault.segments.members(s, seg.id).items
    with vault.unit(CTX) as s:
        ledger.withdraw(s, recent, "marketing_email")
    with vault.unit(EMAIL) as s:
        nobody: list[uuid.UUID] = []
        assert nobody == vault.segments.members(s, seg.id).items
    with vault.unit(CTX) as s:
        (third,) = vault.segments.refresh(s, seg.id)
    assert (third.members, third.entered, third.left) == (0, 0, 1)
    expected = [(lapsed, "entered"), (recent, "entered"), (lapsed, "left"), (recent, "left")]
    assert expected == _events(vault, seg.id)


def test_a_completed_chain_enters_at_ingest(vault: Vault, clock: FrozenClock) -> None:
    """Browse, then cart, then purchase, each within an hour: the customer enters when the
    purchase is recorded (the ingest hook, no refresh), with its event; a customer whose
    purchase came too late stays out."""
    quick, slow = _customers(vault, 2)
    t = clock.now - timedelta(hours=3)
    rule = sequence({"types": ["page_view"]}, {"types": ["cart_add"]}, {"types": ["purchase"]},
                    within={"hours": 1}, window={"within_days": 7})  # fmt: skip
    steps = [Event("page_view", "web", t), Event("cart_add", "web", t + timedelta(minutes=20))]
    _record(vault, {quick: steps, slow: steps})
    with vault.unit(CTX) as s:
        seg = vault.segments.create(s, name="converted", definition=rule)
        (first,) = vault.segments.refresh(s, seg.id)
    assert first.members == 0
    _record(vault, {quick: [Event("purchase", "web", t + timedelta(minutes=50))],
                    slow: [Event("purchase", "web", t + timedelta(minutes=81))]})  # fmt: skip
    with vault.unit(CTX) as s:
        assert [quick] == vault.segments.members(s, seg.id).items
    assert [(quick, "entered")] == _events(vault, seg.id)
