"""Generated documents answer byte for byte alike on the compiled path and graphql-core.

A seeded generator (``documents``) writes profile documents over the shapes a plan
compiles (``customer``, ``customerByEmail``, ``customerByPhone``, ``me``, with or without
the timeline, aliases, variables, literals, ``__typename``) and nearby ones a plan must
leave to graphql-core (fragments, directives, repeated keys, other fields and
arguments). Every role x purpose of the default policy sends its share of them about
customers in every state (full, without interactions, restricted, erased, without
consent, merged away, unknown, malformed ids), once with plans off and once with plans
on: the status, the body and the audit entries written must be identical.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from api.graphql.compiled import compile_plan
from policies import Role
from policies.purposes import Purpose
from tests.api.test_graphql_compiled import (  # noqa: F401 - fixtures used by name
    Harness,
    People,
    harness,
    people,
)
from tests.conftest import CTX
from vault.customers import CustomerInput
from vault.runtime import Vault

_PLAIN = ("id", "customerId", "email", "phone", "firstName", "lastName", "birthDate",
          "address", "locale", "tier", "tags", "attributes", "status", "createdAt", "version",
          "__typename")  # fmt: skip
_NODE = ("id", "interactionId", "channel", "type", "occurredAt", "amount", "currency",
         "externalId", "__typename")  # fmt: skip
_PAGE = ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename")
# Selections a plan does not take: each turns a document into graphql-core's.
_NEARBY = (
    "consents { purpose }",
    "total: interactions(first: 2) { totalCount }",
    "tail: interactions(last: 2) { edges { cursor } }",
    "payloads: interactions { edges { node { payload } } }",
    "email @include(if: true)",
    "id id",
    "...F",
)


@dataclass(frozen=True)
class Document:
    query: str
    variables: dict[str, Any]
    compiled: bool  # whether a plan should take it


def _interactions(rng: random.Random, variables: dict[str, Any]) -> str:
    edges: list[str] = []
    if rng.random() < 0.8:
        node = rng.sample(_NODE, rng.randint(1, len(_NODE)))
        edges.append("node { " + " ".join(node) + " }")
    if rng.random() < 0.5 or not edges:
        edges.append("cursor")
    parts = ["edges { " + " ".join(edges) + " }"]
    if rng.random() < 0.4:
        parts.append("pageInfo { " + " ".join(rng.sample(_PAGE, rng.randint(1, 5))) + " }")
    first = rng.choice(["", "(first: 3)", "(first: $n)", "(first: 0)"])
    if first == "(first: $n)":
        variables["n"] = rng.choice([1, 4, 20, 101, "ten"])
    alias = rng.choice(["", "recent: "])
    return f"{alias}interactions{first} {{ {' '.join(parts)} }}"


def _root(rng: random.Random, targets: dict[str, Any], variables: dict[str, Any]) -> str:
    kind = rng.choice(["customer", "customer", "literal", "email", "phone", "me"])
    if kind == "customer":
        variables["id"] = rng.choice(targets["ids"])
        return "customer(id: $id)"
    if kind == "literal":
        return 'customer(id: "%s")' % rng.choice(targets["ids"])  # noqa: UP031
    if kind == "email":
        variables["email"] = rng.choice(targets["emails"])
        return "customerByEmail(email: $email)"
    if kind == "phone":
        variables["phone"] = rng.choice(targets["phones"])
        return "customerByPhone(phone: $phone)"
    return "me"


def documents(seed: int, count: int, targets: dict[str, Any]) -> Iterator[Document]:
    """``count`` documents, the same for the same seed."""
    rng = random.Random(seed)
    for _ in range(count):
        variables: dict[str, Any] = {}
        roots: list[str] = []
        for n in range(rng.choice([1, 1, 1, 2])):
            call = _root(rng, targets, variables)
            fields = rng.sample(_PLAIN, rng.randint(1, 6))
            if rng.random() < 0.6:
                fields.append(_interactions(rng, variables))
            alias = f"r{n}: " if n or rng.random() < 0.3 else ""
            roots.append(f"{alias}{call} {{ {' '.join(fields)} }}")
        nearby = rng.random() < 0.25
        if nearby:
            roots[0] = roots[0][:-1] + rng.choice(_NEARBY) + " }"
        if rng.random() < 0.2:
            roots.append("__typename")
        kinds = {"id": "ID!", "email": "String!", "phone": "String!", "n": "Int!"}
        declared = ", ".join(f"${k}: {kinds[k]}" for k in variables)
        head = f"query Generated({declared})" if declared else "query Generated"
        query = f"{head} {{ {' '.join(roots)} }}"
        if "...F" in query:
            query += " fragment F on Customer { id firstName }"
        yield Document(query, variables, compiled=not nearby)


@pytest.fixture
def targets(vault: Vault, people: People) -> dict[str, Any]:  # noqa: F811 - fixture
    """Ids, e-mail addresses and phone numbers to ask about, a merged-away id among them,
    and an address and a phone two records share (AMBIGUOUS)."""
    with vault.unit(CTX) as s:
        twin = vault.customers.create(
            s, CustomerInput(email="twin@example.th", phone="+66 81 234 5678", first_name="ก")
        )
        vault.customers.merge(s, people.bare, twin.id)
        for name in ("\u674e", "\u738b"):  # two records, one address: written before detection
            pair = CustomerInput(
                email="pair@example.cn", phone="+86 138 0013 8000", first_name=name
            )
            vault.customers.create(s, pair, check_duplicates=False)
    ids = [people.full, people.bare, people.restricted, people.erased, people.unconsented]
    return {
        "ids": [*map(str, ids), str(twin.id), str(uuid.uuid4()), "not-a-uuid"],
        "emails": [
            "zahra.karimi@EXAMPLE.ir",
            "twin@example.th",
            "nobody@example.com",
            "pair@example.cn",
        ],
        "phones": ["+98 912 345 6789", "+66 81 234 5678", "+1 202 555 0100", "+86 138 0013 8000"],
    }


PAIRS = list(itertools.product(Role, Purpose))


@pytest.mark.parametrize(("role", "purpose"), PAIRS, ids=[f"{r}-{p}" for r, p in PAIRS])
def test_generated_documents_answer_alike(
    harness: Harness,  # noqa: F811 - fixture
    people: People,  # noqa: F811 - fixture
    targets: dict[str, Any],
    role: Role,
    purpose: Purpose,
) -> None:
    """For this role and purpose, each generated document gives the same status, body and
    audit entries with plans off and on, and the documents of a plan's shape get one.
    A pair the default policy refuses outright answers its first document with 403."""
    subject = people.full if role is Role.DATA_SUBJECT else None
    seed = PAIRS.index((role, purpose))
    for doc in documents(seed, 24, targets):
        document = harness.endpoint._document(doc.query)
        operation = next(d for d in document.definitions if hasattr(d, "operation"))
        plan = compile_plan(harness.endpoint.schema, document, operation)  # type: ignore[arg-type]
        assert (plan is not None) == doc.compiled, doc.query
        calls = [
            harness.post(doc.query, doc.variables, role, purpose, compiled=on, customer_id=subject)
            for on in (False, True)
        ]
        assert calls[0] == calls[1], doc.query
        if calls[0][0] == 403:
            break  # the policy refuses this role the purpose before any document runs
