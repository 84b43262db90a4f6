"""Data subject requests over GraphQL, end to end: a customer files an erasure with its own
token, verifies it with the one-time token, a compliance officer sees it with its due date
and processes it; the receipt verifies offline, nothing readable of the customer remains,
and the audit log still verifies."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from consent.receipts import verify_receipt
from policies import Role
from tests.api.test_graphql_policy import Gateway, gateway
from tests.conftest import CTX, grant_all_consents
from tests.vault.test_audit_trail import _export, _verify
from tests.vault.test_erasure import _at_rest, _found
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow

__all__ = ["gateway"]  # the fixture, shared with the policy matrix

PERSON_EMAIL, PERSON_PHONE = "parvaneh.sotoudeh@example.ir", "+989121112233"
PERSON = CustomerInput(
    email=PERSON_EMAIL,
    phone=PERSON_PHONE,
    first_name="پروانه",
    last_name="ستوده‌نیا",
    birth_date="1984-02-29",
    address="شیراز، خیابان زند 7",
)
CHAT = "لطفا سفارش شماره ۴۴ را لغو کنید"
FILE = """
mutation File($input: DsrRequestInput!) {
  createDsrRequest(input: $input) { verificationToken request { id status dueAt receivedAt } }
}
"""
VERIFY = "mutation($id: ID!, $t: String!) { verifyDsrRequest(id: $id, token: $t) { status } }"
PROCESS = """
mutation($id: ID!) {
  processDsrRequest(id: $id) { request { status completedAt } bundle bundleZip receipt }
}
"""
QUEUE = "{ dsrRequests(first: 50) { edges { node { id type status dueAt overdue } } } }"


def _customer(vault: Vault, email: str = PERSON_EMAIL, phone: str = PERSON_PHONE) -> uuid.UUID:
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, dataclasses.replace(PERSON, email=email, phone=phone))
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=made.id, channel="chat", type="chat_message",
                    occurred_at=datetime(2026, 10, 1, tzinfo=UTC), payload={"text": CHAT},
                ),
                InteractionInput(
                    customer_id=made.id, channel="web", type="purchase",
                    occurred_at=datetime(2026, 10, 2, tzinfo=UTC), amount=Decimal("49.90"),
                    currency="EUR",
                ),
            ],
        )  # fmt: skip
    grant_all_consents(vault, made.id)
    return made.id


def _data(response: Any, field: str) -> Any:
    body = response.json()
    assert body.get("errors") is None, body["errors"]
    return body["data"][field]


def _file(gw: Gateway, cid: uuid.UUID, kind: str) -> tuple[str, str, dict[str, Any]]:
    filed = _data(
        gw.post(
            FILE, {"input": {"type": kind, "customerId": str(cid)}},
            role=Role.DATA_SUBJECT, purpose="self", customer_id=cid,
        ),
        "createDsrRequest",
    )  # fmt: skip
    request = filed["request"]
    verified = _data(
        gw.post(
            VERIFY, {"id": request["id"], "t": filed["verificationToken"]},
            role=Role.DATA_SUBJECT, purpose="self", customer_id=cid,
        ),
        "verifyDsrRequest",
    )  # fmt: skip
    assert verified == {"status": "VERIFIED"}
    return request["id"], filed["verificationToken"], request


def test_an_erasure_filed_by_the_customer_is_verified_processed_and_receipted(
    vault: Vault, gateway: Gateway
) -> None:
    """The whole erasure flow of issue 5's 'done means', over HTTP."""
    cid = _customer(vault)
    request_id, _token, filed = _file(gateway, cid, "ERASURE")
    received = datetime.fromisoformat(filed["receivedAt"])
    assert datetime.fromisoformat(filed["dueAt"]) - received in (
        timedelta(days=28), timedelta(days=29), timedelta(days=30), timedelta(days=31),
    )  # fmt: skip

    queue = _data(gateway.post(QUEUE, role=Role.COMPLIANCE_OFFICER, purpose="compliance"),
                  "dsrRequests")  # fmt: skip
    assert [(e["node"]["id"], e["node"]["type"], e["node"]["status"]) for e in queue["edges"]] == [
        (request_id, "ERASURE", "VERIFIED")
    ]
    assert queue["edges"][0]["node"]["dueAt"] == filed["dueAt"]

    done = _data(
        gateway.post(PROCESS, {"id": request_id}, role=Role.COMPLIANCE_OFFICER,
                     purpose="compliance"),
        "processDsrRequest",
    )  # fmt: skip
    assert done["request"]["status"] == "COMPLETED"
    body = verify_receipt(done["receipt"], ed25519_verify, trusted_key=vault.audit.public_vkey)
    assert str(cid) in json.dumps(body)
    assert "پروانه" not in json.dumps(done["receipt"], ensure_ascii=False)

    tomb = _data(
        gateway.post(
            "query($id: ID!) { customer(id: $id) { status email firstName phone } }",
            {"id": str(cid)}, role=Role.COMPLIANCE_OFFICER, purpose="compliance",
        ),
        "customer",
    )  # fmt: skip
    assert tomb == {"status": "ERASED", "email": None, "firstName": None, "phone": None}
    stored = _at_rest(vault)
    values = [PERSON.email, PERSON.first_name, PERSON.last_name, CHAT]
    values += [PERSON.address] if isinstance(PERSON.address, str) else []
    assert _found(stored, [v for v in values if v]) == []
    vault.audit.sequence(vault.db)
    _verify(vault, _export(vault))


def test_an_access_request_returns_every_item_as_json_and_zip(
    vault: Vault, gateway: Gateway
) -> None:
    """The desk processes an access request without seeing the data (bundle redacted); the
    data subject then downloads the bundle: the profile in clear, both interactions with
    the chat payload, the consent history, and the same in the zip's CSVs."""
    cid = _customer(vault)
    request_id, _token, _filed = _file(gateway, cid, "ACCESS")
    response = gateway.post(
        PROCESS, {"id": request_id}, role=Role.COMPLIANCE_OFFICER, purpose="compliance"
    ).json()
    done = response["data"]["processDsrRequest"]
    assert (done["request"]["status"], done["bundle"], done["bundleZip"]) == (
        "COMPLETED", None, None,
    )  # fmt: skip
    assert response["extensions"]["redacted"] == [
        "processDsrRequest.bundle", "processDsrRequest.bundleZip",
    ]  # fmt: skip
    fetched = _data(
        gateway.post(
            "query($id: ID!) { dsrBundle(id: $id) { bundle bundleZip } }", {"id": request_id},
            role=Role.DATA_SUBJECT, purpose="self", customer_id=cid,
        ),
        "dsrBundle",
    )  # fmt: skip
    bundle = fetched["bundle"]
    assert bundle["profile"]["first_name"] == PERSON.first_name
    assert sorted(i["type"] for i in bundle["interactions"]) == ["chat_message", "purchase"]
    assert any(i.get("payload") == {"text": CHAT} for i in bundle["interactions"])
    assert len(bundle["consents"]) == 3
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(fetched["bundleZip"]))) as archive:
        names = set(archive.namelist())
        interactions_csv = archive.read("interactions.csv").decode("utf-8")
    assert {"bundle.json", "profile.csv", "interactions.csv"} <= names
    assert CHAT in interactions_csv
    officer = gateway.post(
        "query($id: ID!) { dsrBundle(id: $id) { bundle } }", {"id": request_id},
        role=Role.COMPLIANCE_OFFICER, purpose="compliance",
    ).json()  # fmt: skip
    assert [e["extensions"]["code"] for e in officer["errors"]] == ["FORBIDDEN"]


def test_a_refused_erasure_leaves_no_trace_of_steps_that_rolled_back(
    vault: Vault, gateway: Gateway
) -> None:
    """Under a legal hold the erasure is refused (LEGAL_HOLD): the request stays verified
    and the audit trail holds the refusal but no 'in progress' step that never happened."""
    cid = _customer(vault)
    request_id, _token, _filed = _file(gateway, cid, "ERASURE")
    as_officer = {"role": Role.COMPLIANCE_OFFICER, "purpose": "compliance"}
    hold = 'mutation($c: ID!) { placeLegalHold(customerId: $c, reason: "tax audit") { id } }'
    _data(gateway.post(hold, {"c": str(cid)}, **as_officer), "placeLegalHold")  # type: ignore[arg-type]
    refused = gateway.post(PROCESS, {"id": request_id}, **as_officer).json()  # type: ignore[arg-type]
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["LEGAL_HOLD"]
    shown = _data(
        gateway.post("query($id: ID!) { dsrRequest(id: $id) { status } }", {"id": request_id},
                     **as_officer),  # type: ignore[arg-type]
        "dsrRequest",
    )  # fmt: skip
    assert shown == {"status": "VERIFIED"}
    with vault.db.transaction() as s:
        rows = s.scalars(
            select(AuditEntryRow.canonical).where(AuditEntryRow.customer_id == cid)
        ).all()
    entries = [json.loads(r) for r in rows]
    steps = [e["detail"].get("status") for e in entries if e["action"] == "dsr.change"]
    assert "in_progress" not in steps
    assert any(e["action"] == "access.denied" for e in entries)


def test_a_data_subject_sees_only_its_own_requests(vault: Vault, gateway: Gateway) -> None:
    """Two customers file; each sees its own request only, compliance sees both; a data
    subject may carry out its own verified request (self-service) but not another's, and
    may not reject its own (a compliance decision)."""
    first = _customer(vault)
    second = _customer(vault, email="second@example.ir", phone="+989121112244")
    one, _t1, _f1 = _file(gateway, first, "PORTABILITY")
    two, _t2, _f2 = _file(gateway, second, "RESTRICTION")
    mine = _data(
        gateway.post(QUEUE, role=Role.DATA_SUBJECT, purpose="self", customer_id=first),
        "dsrRequests",
    )
    assert [e["node"]["id"] for e in mine["edges"]] == [one]
    every = _data(gateway.post(QUEUE, role=Role.COMPLIANCE_OFFICER, purpose="compliance"),
                  "dsrRequests")  # fmt: skip
    assert {e["node"]["id"] for e in every["edges"]} == {one, two}

    def as_first(query: str, request: str) -> Any:
        return gateway.post(
            query, {"id": request}, role=Role.DATA_SUBJECT, purpose="self", customer_id=first
        )

    others = as_first(PROCESS, two).json()
    assert [e["extensions"]["code"] for e in others["errors"]] == ["FORBIDDEN"]
    reject = 'mutation($id: ID!) { rejectDsrRequest(id: $id, reason: "no") { status } }'
    rejected = as_first(reject, one).json()
    assert [e["extensions"]["code"] for e in rejected["errors"]] == ["FORBIDDEN"]
    own = _data(as_first(PROCESS, one), "processDsrRequest")
    assert own["request"]["status"] == "COMPLETED"
    assert own["bundle"]["customer_id"] == str(first)


def test_a_wrong_token_is_refused_and_counted(vault: Vault, gateway: Gateway) -> None:
    """A wrong one-time token fails with VERIFICATION_FAILED and the request stays received."""
    cid = _customer(vault)
    filed = _data(
        gateway.post(
            FILE, {"input": {"type": "ACCESS", "customerId": str(cid)}},
            role=Role.DATA_SUBJECT, purpose="self", customer_id=cid,
        ),
        "createDsrRequest",
    )  # fmt: skip
    request_id = filed["request"]["id"]
    wrong = gateway.post(
        VERIFY, {"id": request_id, "t": "not-the-token"},
        role=Role.DATA_SUBJECT, purpose="self", customer_id=cid,
    ).json()  # fmt: skip
    assert [e["extensions"]["code"] for e in wrong["errors"]] == ["VERIFICATION_FAILED"]
    shown = _data(
        gateway.post(
            "query($id: ID!) { dsrRequest(id: $id) { status history { status note } } }",
            {"id": request_id}, role=Role.COMPLIANCE_OFFICER, purpose="compliance",
        ),
        "dsrRequest",
    )  # fmt: skip
    assert shown["status"] == "RECEIVED"
    assert any("wrong verification token" in (h["note"] or "") for h in shown["history"])
