"""Logs are JSON with a request id, and no PII value ever reaches them."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import structlog
from starlette.testclient import TestClient

from api.app import create_app
from tests.conftest import CTX
from vault.customers import CustomerInput, CustomerPatch, ExternalId
from vault.interactions import InteractionInput
from vault.logs import REDACTED, configure_logging, drop_pii, get_logger
from vault.runtime import Vault

SECRETS = {
    "email": "leak.canary@example.com",
    "phone": "+447700900123",
    "first_name": "\u0645\u0631\u06cc\u0645",
    "last_name": "Canarysdottir",
    "address": "1 Canary Wharf, London",
    "chat": "please call me back about my canary order",
}


def test_drop_pii_redacts_pii_keys_and_masks_contact_data() -> None:
    """Values under PII keys are replaced; e-mails and phone numbers inside strings are masked."""
    event = drop_pii(
        None,
        "info",
        {
            "event": "oops for leak.canary@example.com at +44 7700 900123",
            "email": "x@example.com",
            "firstName": "Maryam",
            "nested": {"phone": "+447700900123", "ok": "kept"},
            "items": ["a@b.example", 3],
            "customer_id": "3f1c",
        },
    )
    assert event == {
        "event": "oops for [email] at [phone]",
        "email": REDACTED,
        "firstName": REDACTED,
        "nested": {"phone": REDACTED, "ok": "kept"},
        "items": ["[email]", 3],
        "customer_id": "3f1c",
    }


def test_a_full_flow_logs_json_with_request_ids_and_no_pii(vault: Vault) -> None:
    """Create, update, ingest, merge, look up, and serve HTTP requests: every log line is
    JSON, HTTP lines carry a request id, and no PII value appears anywhere."""
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    try:
        with vault.unit(CTX) as s:
            a = vault.customers.create(
                s,
                CustomerInput(
                    email=SECRETS["email"], phone=SECRETS["phone"],
                    first_name=SECRETS["first_name"], last_name=SECRETS["last_name"],
                    address=SECRETS["address"], external_ids=[ExternalId("crm", "c1")],
                ),
            )  # fmt: skip
            b = vault.customers.create(s, CustomerInput(email="other." + SECRETS["email"]))
            vault.interactions.record_many(
                s,
                [
                    InteractionInput(
                        customer_id=a.id, channel="chat", type="chat_message",
                        occurred_at=datetime(2026, 11, 2, tzinfo=UTC),
                        payload={"text": SECRETS["chat"]},
                    )
                ],
            )  # fmt: skip
            vault.customers.update(s, a.id, CustomerPatch(last_name=SECRETS["last_name"] + "x"))
            vault.customers.merge(s, a.id, b.id)
            vault.customers.find_by_email(s, SECRETS["email"])
        get_logger("test").warning("mistake", email=SECRETS["email"], note=SECRETS["phone"])
        client = TestClient(create_app(vault))
        assert client.get("/healthz", headers={"X-Request-ID": "req-12345678"}).status_code == 200
        assert client.get("/readyz").status_code == 200
    finally:
        configure_logging()
        structlog.contextvars.clear_contextvars()
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    events = {line["event"] for line in lines}
    assert {"customer.created", "customer.updated", "interactions.recorded"} <= events
    assert {"customer.merged", "request", "mistake"} <= events
    http = [line for line in lines if line["event"] == "request"]
    assert http[0].get("request_id") == "req-12345678"
    assert all(line.get("request_id") for line in http)
    leaked = [v for v in SECRETS.values() if v in text or v.lower() in text.lower()]
    assert leaked == []


def test_an_exception_log_carries_no_local_variables() -> None:
    """A traceback in the logs names files and lines, never the values of locals (a
    decrypted name in a local would otherwise be printed)."""
    out = io.StringIO()
    configure_logging("debug", stream=out)
    try:
        decrypted_name = "Tahmineh Milani-Rostami"

        def _fail(given: str) -> None:
            raise RuntimeError("boom " + str(len(given)))

        try:
            _fail(decrypted_name)
        except RuntimeError:
            get_logger("test").exception("failed")
    finally:
        configure_logging()
    text = out.getvalue()
    assert "RuntimeError" in text
    assert "Tahmineh" not in text
    assert '"locals"' not in text


def test_log_lines_render_any_value_as_one_json_object() -> None:
    """Non-ASCII stays as written, and values orjson refuses (integers beyond 64 bits,
    non-string keys, unknown types) still give one JSON line."""
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    try:
        get_logger("test").info(
            "çå 伟", big=2**70, keyed={1: "one"}, when=datetime(2026, 1, 2, tzinfo=UTC)
        )
        get_logger("test").info("plain", keyed={1: "one"}, obj=object.__new__(object))
    finally:
        configure_logging("info")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["event"], first["big"], first["keyed"]) == ("çå 伟", 2**70, {"1": "one"})
    assert "2026" in first["when"]
    assert second["keyed"] == {"1": "one"}
    assert "çå 伟" in stream.getvalue()


def test_strings_without_at_or_plus_skip_the_patterns_and_others_are_still_masked() -> None:
    """The request line's plain fields pass untouched; an e-mail, a phone number (in a
    Thai sentence too) and PII keys are masked as before the fast path."""
    from vault.logs import drop_pii  # noqa: PLC0415

    event = {
        "event": "request", "method": "POST", "path": "/graphql", "status": 200,
        "duration_ms": 1.5, "ok": True, "none": None,
        "note": "โทร +66 81 234 5678 หรือ สมชาย@example.co.th", "firstName": "王小明",
        "nested": {"email": "zoë@example.org", "items": ["+33 6 12 34 56 78"]},
    }  # fmt: skip
    expected = {
        "event": "request", "method": "POST", "path": "/graphql", "status": 200,
        "duration_ms": 1.5, "ok": True, "none": None,
        "note": "โทร [phone] หรือ [email]", "firstName": "[redacted]",
        "nested": {"email": "[redacted]", "items": ["[phone]"]},
    }  # fmt: skip
    assert expected == drop_pii(None, "info", dict(event))
