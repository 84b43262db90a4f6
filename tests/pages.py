"""Helpers for the pages' tests: a real SMTP server on loopback (aiosmtpd) that keeps what
it receives, a vault that mails through it, and a client that signs a customer in the
way a browser does (forms, CSRF tokens, the code read from the received message)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.customers.addresses import PostalAddress
from vault.runtime import Vault

__all__ = [
    "ANN",
    "Mailbox",
    "code_of",
    "csrf_of",
    "free_port",
    "mailing_vault",
    "make_customer",
    "sign_in",
    "smtp_server",
]

ANN = {
    "email": "ann.page@example.com",
    "phone": "+66812345678",
    "first_name": "\u0622\u0646\u0627",  # Ana, in Persian
    "last_name": "Lindqvist",
    "birth_date": "1990-05-17",
}
_CODE = re.compile(r"(?<![0-9])([0-9]{8})(?![0-9])")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """What the loopback SMTP server received, in order; ``wait`` blocks for the n-th."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.url = ""
        self._arrived = threading.Condition()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(parsed)
            self._arrived.notify_all()
        return "250 OK"

    def wait(self, count: int = 1, timeout: float = 15.0) -> EmailMessage:
        """The ``count``-th message received (waits for it; fails if it never comes)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"no message number {count} arrived")
            return self.messages[count - 1]


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.url = f"smtp://127.0.0.1:{port}"
    try:
        yield box
    finally:
        controller.stop()


def mailing_vault(vault: Vault, box: Mailbox, **settings: Any) -> Vault:
    """The test's vault, sending sign-in codes to the loopback SMTP server."""
    changed = dataclasses.replace(vault.settings, smtp_url=box.url, **settings)
    return Vault.open(
        changed, keyring=vault.keyring, database=vault.db, signer=vault.audit.signer,
        clock=vault.clock,
    )  # fmt: skip


def make_customer(vault: Vault, **pii: Any) -> uuid.UUID:
    values = {**ANN, **pii}
    with vault.unit(CTX) as s:
        return vault.customers.create(
            s,
            CustomerInput(
                **values,
                address=PostalAddress(street="12 Sukhumvit Rd", city="Bangkok", country="TH"),
                tags=["newsletter"],
                attributes={"shoe_size": 38},
            ),
        ).id


def code_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = _CODE.search(str(body.get_content()))
    assert found is not None, "the message carries no 8-digit code"
    return found.group(1)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form"
    return found.group(1)


def sign_in(client: TestClient, box: Mailbox, contact: str = ANN["email"], *, nth: int = 1) -> str:
    """Sign in as a browser would; returns the page the sign-in lands on."""
    page = client.get("/privacy")
    client.post(
        "/privacy/sign-in",
        data={"csrf": csrf_of(page.text), "channel": "email", "contact": contact},
    )
    code = code_of(box.wait(nth))
    form = client.get("/privacy/code")
    landed = client.post("/privacy/code", data={"csrf": csrf_of(form.text), "code": code})
    assert landed.status_code == 200, landed.status_code
    return landed.text
