"""Recipients at the edges (GDPR Art. 15(1)(c)), on SQLite and PostgreSQL: after a webhook
received a customer's segment event, the customer's ``accessHistory`` over GraphQL and the
privacy page's access view name the recipient (purpose and the URL's host, never the rest
of the URL), with translated labels."""

from __future__ import annotations

from starlette.testclient import TestClient

from api.pages.words import ACTIONS, WEBHOOK_EVENTS
from policies import Role
from tests.api.test_graphql_policy import Gateway, gateway
from tests.conftest import FrozenClock
from tests.pages import Mailbox, make_customer, sign_in
from tests.vault.test_webhooks import Receiver, _refresh, _register, _segment, receiver
from vault.runtime import Vault

__all__ = ["gateway", "receiver"]  # fixtures shared with other tests

HOOK = "/hook?token=s3cr3t-in-the-query"
HISTORY = """{ me { accessHistory(first: 50) { edges { node {
  actor role purpose action customerId recipient { webhookId purpose host } } } } } }"""


def test_access_history_over_graphql_lists_the_recipient(
    vault: Vault, gateway: Gateway, receiver: Receiver, clock: FrozenClock
) -> None:
    """A data subject's accessHistory holds the webhook.delivered entry with its recipient:
    the webhook id, its purpose and the host; other entries have no recipient."""
    cid = make_customer(vault, tier="gold")
    new = _register(vault, receiver, HOOK, [_segment(vault)])
    _refresh(vault)
    assert vault.dispatcher.run_once(vault.db).delivered == 1
    for _ in range(2):  # the first read is itself in the history the second one lists
        body = gateway.post(HISTORY, role=Role.DATA_SUBJECT, purpose="self", customer_id=cid)
    body = body.json()
    nodes = [e["node"] for e in body["data"]["me"]["accessHistory"]["edges"]]
    delivered = [n for n in nodes if n["action"] == "webhook.delivered"]
    expected = {
        "actor": f"webhook:{new.webhook.id}",
        "role": "system",
        "purpose": "analytics",
        "action": "webhook.delivered",
        "customerId": str(cid),
        "recipient": {"webhookId": str(new.webhook.id), "purpose": "analytics",
                      "host": "127.0.0.1"},
    }  # fmt: skip
    assert [expected] == delivered
    assert {None} == {n["recipient"] for n in nodes if n["action"] != "webhook.delivered"}
    assert "s3cr3t" not in str(body)


def test_the_privacy_page_shows_the_recipient_in_every_language(
    site: tuple[Vault, TestClient], mailbox: Mailbox, receiver: Receiver, clock: FrozenClock
) -> None:
    """The access view shows a row for the delivery: the recipient label and its host, the
    purpose, what was done and which event; in Persian the labels are translated; the
    URL's path and query never appear."""
    vault, client = site
    make_customer(vault, tier="gold")
    _register(vault, receiver, HOOK, [_segment(vault)])
    _refresh(vault)
    assert vault.dispatcher.run_once(vault.db).delivered == 1
    sign_in(client, mailbox)
    english = client.get("/privacy/access").text
    for shown in (
        "A service that receives updates about you",
        '<bdi dir="ltr" class="host">127.0.0.1</bdi>',
        "Analytics",
        f"{ACTIONS['webhook.delivered']}: {WEBHOOK_EVENTS['segment.entered']}",
    ):
        assert shown in english
    assert "s3cr3t" not in english
    assert "/hook" not in english
    client.get("/lang/fa")
    persian = client.get("/privacy/access").text
    for shown in (
        "سرویسی که به‌روزرسانی‌هایی دربارهٔ شما دریافت می‌کند",
        "به سرویسی دیگر فرستاده شد: به یک گروه مشتریان پیوستید",
        '<bdi dir="ltr" class="host">127.0.0.1</bdi>',
    ):
        assert shown in persian
    assert "A service that receives updates about you" not in persian
