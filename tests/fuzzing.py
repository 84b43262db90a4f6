"""Generated GraphQL operations and what every answer to them must respect.

Shared by the suite (``tests/api/test_fuzz.py``: a bounded number of operations per role
in ``make test``) and by ``bench/fuzz.py`` (the long run whose counts go into
docs/reliability.md). Operations come from the live schema through hypothesis-graphql:
queries and mutations with arguments of every shape the schema allows, custom scalars
included, strings with NUL bytes and any script included.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import graphql
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from consent import Privacy
from policies import Role
from policies.purposes import registry
from vault.authorization.context import AccessContext
from vault.customers import CustomerInput
from vault.runtime import Vault

__all__ = [
    "ROLE_PURPOSES",
    "Tally",
    "operations",
    "problems",
    "seed_customers",
]

ROLE_PURPOSES: Mapping[Role, str] = {
    Role.SUPPORT_AGENT: "support",
    Role.MARKETING: "marketing_email",
    Role.ANALYST: "analytics",
    Role.COMPLIANCE_OFFICER: "compliance",
    Role.ADMIN: "administration",
    Role.DATA_SUBJECT: "self",
}

_SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    "DateTime": st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(lambda d: nodes.String(d.isoformat())),
        st.text(max_size=30).map(nodes.String),
    ),
    "Decimal": st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=2).map(
            lambda d: nodes.String(str(d))
        ),
        st.integers().map(nodes.Int),
        st.text(max_size=20).map(nodes.String),
    ),
    "JSON": st.one_of(
        st.text(max_size=40).map(nodes.String),
        st.integers().map(nodes.Int),
        st.dictionaries(st.from_regex(r"\A[a-z_]{1,8}\Z"), st.text(max_size=20), max_size=3).map(
            lambda d: nodes.Object(
                [
                    graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=nodes.String(v))
                    for k, v in d.items()
                ]
            )
        ),
    ),
}

# What an answer must never show: a Python traceback, an exception's class name, a
# SQL error, a file path of ours.
_LEAKS = re.compile(
    r"Traceback|File \"|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|psycopg|sqlalchemy|sqlite3"
    r"|SELECT |INSERT |/vault/|/api/"
)
# Leaks are looked for in error messages and extensions, where our code writes; data
# values echo what the caller stored (a fuzzer may store the word "SELECT").


def operations(schema: graphql.GraphQLSchema) -> st.SearchStrategy[str]:
    """One root field per operation, drawn evenly from every query and mutation field,
    with arguments drawn from their types (small documents: every field gets its share of
    the operations, and each answer is quick to check)."""
    query_type, mutation_type = schema.query_type, schema.mutation_type
    assert query_type is not None
    per_field = [
        queries(schema, fields=[name], custom_scalars=_SCALARS) for name in query_type.fields
    ]
    if mutation_type is not None:
        per_field += [
            mutations(schema, fields=[name], custom_scalars=_SCALARS)
            for name in mutation_type.fields
        ]
    return st.one_of(per_field).map(str)


def problems(status: int, text: str) -> list[str]:
    """Everything wrong with one answer: a 5xx, a body that is not JSON, an INTERNAL
    error, a leak of internals in an error."""
    found: list[str] = []
    if status >= 500:
        found.append(f"status {status}")
    try:
        body = json.loads(text)
    except ValueError:
        return [*found, f"status {status}: a body that is not JSON"]
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        code = (error.get("extensions") or {}).get("code")
        if code == "INTERNAL" or code is None:
            found.append(f"error code {code!r}: {str(error.get('message'))[:200]}")
        shown = json.dumps({k: v for k, v in error.items() if k != "path"}, ensure_ascii=False)
        if leak := _LEAKS.search(shown):
            found.append(f"leak {leak.group(0)!r} in {shown[:300]}")
    return found


@dataclass(slots=True)
class Tally:
    """Counts of one fuzzing run: operations sent, answers by status and by error code,
    and every problem seen (with the operation that caused it)."""

    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, operation: str, status: int, text: str) -> list[str]:
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = None
        for error in (body or {}).get("errors") or [] if isinstance(body, dict) else []:
            code = str((error.get("extensions") or {}).get("code"))
            self.codes[code] = self.codes.get(code, 0) + 1
        found = problems(status, text)
        self.failures.extend((operation, p) for p in found)
        return found

    def summary(self, examples: int = 1) -> list[str]:
        """The distinct problems, most frequent first, each with a count and an example
        operation: what a failing test shows."""
        groups: dict[str, list[str]] = {}
        for operation, problem in self.failures:
            groups.setdefault(problem[:100], []).append(operation)
        return [
            f"{len(ops)} x {kind}\n" + "\n".join("    " + op[:500] for op in ops[:examples])
            for kind, ops in sorted(groups.items(), key=lambda item: -len(item[1]))
        ]


def seed_customers(vault: Vault, context: AccessContext) -> list[uuid.UUID]:
    """A few customers named in several scripts, each with every consent-based purpose
    granted, so that generated reads find data."""
    names = [("Roya", "Karimi"), ("สมชาย", "ใจดี"), ("李", "娜"), ("Zoë", "Façade")]
    with vault.unit(context) as s:
        ids = [
            vault.customers.create(
                s,
                CustomerInput(
                    first_name=first,
                    last_name=last,
                    email=f"fuzz{n}@example.com",
                    tags=["vip"] if n % 2 else [],
                ),
            ).id
            for n, (first, last) in enumerate(names)
        ]
    ledger = Privacy.of(vault).ledger
    with vault.unit(context) as s:
        for cid in ids:
            for purpose, info in registry().items():
                if info.needs_consent:
                    ledger.grant(s, cid, purpose)
    return ids
