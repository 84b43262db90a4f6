"""Fixtures the page tests share: a local SMTP server and the application on a vault
that mails through it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from tests.pages import Mailbox, mailing_vault, smtp_server
from vault.runtime import Vault


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A local SMTP server catching what the vault sends (sign-in codes, receipts)."""
    with smtp_server() as box:
        yield box


@pytest.fixture
def site(vault: Vault, mailbox: Mailbox) -> Iterator[tuple[Vault, TestClient]]:
    """The application (pages and GraphQL) on a vault that mails through ``mailbox``."""
    mailing = mailing_vault(vault, mailbox)
    with TestClient(create_app(mailing, webhook_every=None, sequence_every=60)) as client:
        yield mailing, client
