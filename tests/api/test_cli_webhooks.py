"""``cvault webhooks deliver`` and ``cvault webhooks list`` on SQLite and PostgreSQL, and
the server's background loop that delivers without being asked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from tests.vault.test_webhooks import Receiver
from vault.config import Settings
from vault.customers import CustomerInput
from vault.runtime import Vault

GOLD = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that checks signatures against the real clock (the CLI's)."""
    r = Receiver(_now)
    yield r
    r.close()


def _prepare(vault: Vault, receiver: Receiver) -> str:
    """Two gold customers, a gold segment refreshed (two outbox events), and an analytics
    webhook on it pointing at the receiver. Returns the webhook id."""
    with vault.unit(CTX) as s:
        for _ in range(2):
            vault.customers.create(s, CustomerInput(first_name="Ada", tier="gold"))
        segment = vault.segments.create(s, name="gold", definition=GOLD)
        new = vault.webhooks.create(
            s, url=receiver.url("/cli"), segment_ids=[segment.id], purpose="analytics"
        )
    receiver.secrets["/cli"] = new.secret
    with vault.unit(CTX) as s:
        vault.segments.refresh(s)
    return str(new.webhook.id)


def test_deliver_prints_counts_and_list_prints_the_webhook(
    tmp_path: Path, database_url: tuple[str, str | None], receiver: Receiver
) -> None:
    """`webhooks deliver` fans out and sends both events (verified by the receiver) and
    prints the counts; a second run has nothing to do; `webhooks list` shows the id and
    purpose and never a secret."""
    env = cli_env(tmp_path, database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    try:
        webhook_id = _prepare(vault, receiver)
    finally:
        vault.close()

    result = runner.invoke(app, ["webhooks", "deliver"], env=env)
    assert result.exit_code == 0, result.output
    assert "delivered" in result.output
    assert "2" in result.output
    assert [r.verified for r in receiver.at("/cli")] == [True, True]
    again = runner.invoke(app, ["webhooks", "deliver"], env=env)
    assert again.exit_code == 0, again.output
    assert len(receiver.at("/cli")) == 2

    listed = runner.invoke(app, ["webhooks", "list"], env=env, terminal_width=250)
    assert listed.exit_code == 0, listed.output
    assert webhook_id in listed.output
    assert "analytics" in listed.output
    assert "whsec_" not in listed.output
    assert "1 webhook(s)" in listed.output


def test_the_server_delivers_in_the_background(vault: Vault, receiver: Receiver) -> None:
    """While the app runs, outbox events reach the webhook without any command."""
    receiver.clock = vault.clock  # the vault's frozen clock signs the timestamps
    _prepare(vault, receiver)
    with TestClient(create_app(vault, webhook_every=0.05)):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(receiver.at("/cli")) < 2:
            time.sleep(0.05)
    assert [r.verified for r in receiver.at("/cli")] == [True, True]
