"""Typed clients, for real (issue 16): the TypeScript project beside this file is built
and run against a live ``cvault serve``, as a frontend team would build and run it.

GraphQL Code Generator's client preset types ``src/operations.ts`` against the schema the
running server introspects, and writes the manifest of its documents
(``persisted-documents.json``); ``tsc`` compiles the client in strict mode (where
``src/typing.ts`` proves the generated types refuse what the schema refuses); ``node``
runs one scenario (a page of customers and the next, profiles, customers created with
Persian and Thai names, a purchase recorded twice, ``me`` and a consent change) with two
clients: a plain ``fetch`` client and urql with its defaults. Each runs it twice: as
text against a server under ``CVAULT_TRUSTED_DOCUMENTS=allow``, and as trusted
documents (the manifest registered with ``cvault documents register``, only ids on the
wire) against a server under ``require``.

The project is copied to a temporary folder and installed there with ``npm ci`` from
the committed lockfile (npm's cache in ~/.npm makes that offline once warm), so runs
never share a node_modules. Without node 20+ and npm, or when ``npm ci`` fails, the
tests are skipped with the reason, except under ``CI=true``, where they fail. The two
servers run on copies of one SQLite vault (made before either starts, so one token
works on both): the tests are about the HTTP contract the clients compile against, and
the trusted documents' storage on PostgreSQL is covered by
``tests/api/test_graphql_trusted.py`` and ``tests/api/test_cli_documents.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from graphql import build_schema, lexicographic_sort_schema, print_schema

from tests.processes import ROOT, Server, run_cli, serving, unavailable, vault_env

# One build and two servers serve the whole module. Under `--dist loadgroup` the mark keeps
# its tests on one worker; pytest 9.2 with xdist 3.8 ignores it (pytest-xdist#1386), and
# plain `-n` may split the module (then each worker builds its own copy: slower, correct).
pytestmark = [pytest.mark.processes, pytest.mark.xdist_group("typed-clients")]

PROJECT = Path(__file__).resolve().parent
SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "codegen.ts", "src")
GENERATED = ("gql", "dist")  # what codegen and tsc write: never copied from a local build
NPM_TIMEOUT = 900.0  # a cold cache downloads every package once
STEP_TIMEOUT = 300.0
# A demo customer (vault/demo, seed 7): the data subject of the scenario.
SUBJECT_EMAIL = "minjun.park.1@example.org"
OPERATIONS = {
    "CustomersPage": "query",
    "CustomerProfile": "query",
    "Me": "query",
    "CreateCustomer": "mutation",
    "RecordInteractions": "mutation",
    "GrantConsent": "mutation",
    "WithdrawConsent": "mutation",
}
PERSIAN = {"firstName": "نیلوفر", "lastName": "محمدی\u200cپور"}  # with a zero-width non-joiner
THAI = {"firstName": "สมศรี", "lastName": "ใจดี"}
SCENARIO = {
    "pages": {"first": 5, "second": 5, "overlap": 0, "hasNextPage": True},
    "created": [
        {"sent": PERSIAN, "read": PERSIAN, "status": "ACTIVE", "emailShown": "masked"},
        {"sent": THAI, "read": THAI, "status": "ACTIVE", "emailShown": "masked"},
    ],
    "recorded": [{"inserted": 1, "duplicates": 0}, {"inserted": 0, "duplicates": 1}],
    "timeline": [{"type": "PURCHASE", "channel": "WEB", "amount": "42.50", "currency": "EUR"}],
    "me": {"emailShown": "clear", "consent": ["GRANTED", "WITHDRAWN", "WITHDRAWN:not effective"]},
}
# The order in which the scenario sends its operations.
SENT = [
    "CustomersPage", "CustomersPage", "CreateCustomer", "CustomerProfile", "CreateCustomer",
    "CustomerProfile", "RecordInteractions", "RecordInteractions", "CustomerProfile", "Me",
    "GrantConsent", "WithdrawConsent", "Me",
]  # fmt: skip


# -- the toolchain ----------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not on PATH: the typed client tests need node 20+ and npm")
    assert found is not None
    return found


@dataclass(frozen=True)
class Project:
    """The TypeScript project, copied into a temporary folder."""

    root: Path
    node: str
    npm: str

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = STEP_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=self.root,
            env={**_base_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def step(self, what: str, *args: str, env: dict[str, str] | None = None) -> str:
        """Run a build step; its failure fails the test with the step's output."""
        done = self.run(*args, env=env)
        if done.returncode != 0:
            pytest.fail(f"{what} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout


def _base_env() -> dict[str, str]:
    """The environment of npm and node: the caller's, without the vault's settings, and
    with loopback never sent through a proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVAULT_")}
    bypass = [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"]
    env["NO_PROXY"] = env["no_proxy"] = ",".join(b for b in bypass if b)
    return env


@pytest.fixture(scope="module")
def installing(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Project, subprocess.Popen[str]]]:
    """The project copied and ``npm ci`` started in the background (it runs while the
    vault is prepared)."""
    node, npm = _tool("node"), _tool("npm")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=60
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 20:
        unavailable(f"node {version} is too old: the typed client tests need node 20+")
    root = tmp_path_factory.mktemp("typed-clients")
    for name in SOURCES:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(*GENERATED))
        else:
            shutil.copy2(source, root / name)
    log = (root / "npm-ci.log").open("w")
    process = subprocess.Popen(
        [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"],
        cwd=root, env=_base_env(), stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield Project(root, node, npm), process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        log.close()


# -- the vault and its servers ------------------------------------------------------


@dataclass(frozen=True)
class Callers:
    support: str
    ingest: str
    subject: str

    def env(self) -> dict[str, str]:
        return {
            "CVAULT_TOKEN_SUPPORT": self.support,
            "CVAULT_TOKEN_INGEST": self.ingest,
            "CVAULT_TOKEN_SUBJECT": self.subject,
        }


@dataclass(frozen=True)
class Vaults:
    """Two copies of one vault with demo data, one for each trusted documents rule, and
    the staff tokens (the copies share the token-signing key)."""

    allow: dict[str, str]
    require: dict[str, str]
    logs: Path
    support: str
    ingest: str


def _token(env: dict[str, str], role: str, sub: str, *extra: str) -> str:
    done = run_cli(env, "token", "issue", "--role", role, "--sub", sub, *extra)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def vaults(tmp_path_factory: pytest.TempPathFactory) -> Vaults:
    root = tmp_path_factory.mktemp("vaults")
    first = root / "allow"
    env = vault_env(first, (f"sqlite:///{first / 'vault.db'}", None), CVAULT_LOG_LEVEL="info")
    run_cli(env, "init")
    run_cli(env, "demo", "--customers", "20")
    # The first token creates the signing key: mint before copying, so both copies hold it.
    support = _token(env, "support_agent", "agent-1")
    ingest = _token(env, "ingest_service", "ingest-1")
    second = root / "require"
    shutil.copytree(first, second)  # no server has opened it yet: a plain copy is whole
    other = vault_env(second, (f"sqlite:///{second / 'vault.db'}", None), CVAULT_LOG_LEVEL="info")
    logs = root / "logs"
    logs.mkdir()
    return Vaults(
        allow={**env, "CVAULT_TRUSTED_DOCUMENTS": "allow"},
        require={**other, "CVAULT_TRUSTED_DOCUMENTS": "require"},
        logs=logs,
        support=support,
        ingest=ingest,
    )


@pytest.fixture(scope="module")
def allow_server(vaults: Vaults) -> Iterator[Server]:
    with serving(vaults.allow, vaults.logs) as server:
        yield server


@pytest.fixture(scope="module")
def callers(vaults: Vaults, allow_server: Server) -> Callers:
    """Tokens minted with ``cvault token issue``; the data subject is a demo customer,
    found by e-mail address (the same in both copies)."""
    by_email = "query($e: String!) { customerByEmail(email: $e) { customerId } }"
    found = allow_server.graphql(vaults.support, "support", by_email, {"e": SUBJECT_EMAIL}).json()
    subject_id = found["data"]["customerByEmail"]["customerId"]
    subject = _token(vaults.allow, "data_subject", "subject-1", "--customer-id", subject_id)
    return Callers(support=vaults.support, ingest=vaults.ingest, subject=subject)


@dataclass(frozen=True)
class Built:
    project: Project
    manifest: Path
    schema: Path


@pytest.fixture(scope="module")
def built(
    installing: tuple[Project, subprocess.Popen[str]], allow_server: Server, callers: Callers
) -> Built:
    """``npm ci`` done, codegen run against the live server's introspection, ``tsc
    --noEmit`` strict passed, and the JavaScript written."""
    project, install = installing
    code = install.wait(timeout=NPM_TIMEOUT)
    if code != 0:
        output = (project.root / "npm-ci.log").read_text(errors="replace")
        unavailable(f"npm ci exited {code} (offline with an empty ~/.npm?):\n{output[-3000:]}")
    schema_env = {
        "CVAULT_SCHEMA_URL": f"{allow_server.url}/graphql",
        "CVAULT_SCHEMA_TOKEN": callers.support,
        "CVAULT_SCHEMA_PURPOSE": "support",
    }
    project.step("codegen", project.npm, "run", "--silent", "codegen", env=schema_env)
    project.step("tsc --noEmit (strict)", project.npm, "run", "--silent", "typecheck")
    project.step("tsc (the JavaScript node runs)", project.npm, "run", "--silent", "build")
    return Built(
        project,
        manifest=project.root / "src" / "gql" / "persisted-documents.json",
        schema=project.root / "generated" / "schema.graphql",
    )


@pytest.fixture(scope="module")
def require_server(vaults: Vaults, built: Built) -> Iterator[Server]:
    """The client build's manifest registered (as a deploy would), then a server that
    runs registered documents only."""
    done = run_cli(vaults.require, "documents", "register", str(built.manifest), "--by", "ci")
    assert f"registered {len(OPERATIONS)} documents, 0 already trusted" in done.stdout
    with serving(vaults.require, vaults.logs) as server:
        yield server


# -- running the client ---------------------------------------------------------------


def run_client(
    built: Built, server: Server, callers: Callers, client: str, send: str
) -> subprocess.CompletedProcess[str]:
    return built.project.run(
        built.project.node, "dist/main.js",
        env={
            "CVAULT_URL": server.url, "CVAULT_CLIENT": client, "CVAULT_SEND": send,
            "CVAULT_RUN": f"{client}-{send}", **callers.env(),
        },
    )  # fmt: skip


def scenario(built: Built, server: Server, callers: Callers, client: str, send: str) -> Any:
    done = run_client(built, server, callers, client, send)
    if done.returncode != 0:
        pytest.fail(f"{client} ({send}) exited {done.returncode}:\n{done.stderr}")
    return json.loads(done.stdout)


def _sorted_sdl(sdl: str) -> str:
    return print_schema(lexicographic_sort_schema(build_schema(sdl)))


# -- the tests --------------------------------------------------------------------------


def test_the_client_compiles_against_the_schema_the_server_introspects(built: Built) -> None:
    """Codegen read the schema from the live server's introspection, and that schema is
    the committed schema.graphql (ordered alike); ``tsc`` strict passed (the fixture),
    ``src/typing.ts`` included."""
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    introspected = built.schema.read_text(encoding="utf-8")
    assert _sorted_sdl(committed) == _sorted_sdl(introspected)
    assert (built.project.root / "dist" / "main.js").is_file()


def test_the_manifest_holds_each_operation_under_the_sha256_of_its_text(built: Built) -> None:
    """persisted-documents.json maps ``sha256:<hex of the text>`` to each of the client's
    seven operations (its fragment included where it is spread)."""
    manifest: dict[str, str] = json.loads(built.manifest.read_text(encoding="utf-8"))
    ids = {f"sha256:{hashlib.sha256(text.encode()).hexdigest()}" for text in manifest.values()}
    named = {
        m.group(2): m.group(1)
        for text in manifest.values()
        if (m := re.search(r"\b(query|mutation) (\w+)", text))
    }
    spreads = [t for t in manifest.values() if "...CustomerNameFields" in t]
    assert (set(manifest), OPERATIONS, 3) == (ids, named, len(spreads))
    assert all("fragment CustomerNameFields on Customer" in text for text in spreads)


TRANSPORTS = {
    # (client, send): how queries and mutations go over the wire
    ("fetch", "text"): (("POST", ["query"]), ("POST", ["query"])),
    ("urql", "text"): (("GET", ["query"]), ("POST", ["query"])),
    ("fetch", "documents"): (("GET", ["documentId"]), ("POST", ["documentId"])),
    ("urql", "documents"): (("GET", ["persistedQuery"]), ("POST", ["persistedQuery"])),
}


@pytest.fixture(scope="module")
def servers(allow_server: Server, require_server: Server) -> dict[str, Server]:
    """The server each way of sending runs against."""
    return {"text": allow_server, "documents": require_server}


@pytest.mark.parametrize(("client", "send"), list(TRANSPORTS))
def test_the_scenario_runs_typed_end_to_end(
    built: Built, callers: Callers, servers: dict[str, Server], client: str, send: str
) -> None:
    """Each client runs the scenario as text (server: allow) and as trusted documents
    (server: require): every answer has the expected shape and values, names in Persian
    and Thai come back exactly, and each request went out as expected: urql's defaults
    send queries as GET; as trusted documents no request carries a document's text. No
    name or e-mail address the clients sent reaches the server's log."""
    server = servers[send]
    ran = scenario(built, server, callers, client, send)
    query, mutation = TRANSPORTS[client, send]
    expected = [
        {"method": m, "operationName": name, "named": n}
        for name in SENT
        for m, n in [query if OPERATIONS[name] == "query" else mutation]
    ]
    assert (client, send, SCENARIO, expected) == (
        ran["client"], ran["send"], ran["summary"], ran["requests"]
    )  # fmt: skip
    log = server.output()
    run = f"{client}-{send}"
    emails = [f"niloufar.{run}@example.org", f"somsri.{run}@example.org"]
    sent_values = [*PERSIAN.values(), *THAI.values(), *emails]
    assert [v for v in sent_values if v in log] == []


def test_a_server_requiring_trusted_documents_refuses_the_clients_text(
    built: Built, callers: Callers, require_server: Server
) -> None:
    """The same client sending text to the ``require`` server is refused at its first
    request (400 TRUSTED_DOCUMENT_REQUIRED): the trusted runs above sent ids, not text."""
    refused = (1, True)
    done = run_client(built, require_server, callers, "urql", "text")
    assert refused == (done.returncode, "TRUSTED_DOCUMENT_REQUIRED" in done.stderr)
    answer = requests.get(
        f"{require_server.url}/graphql",
        params={"query": "{ me { id } }"},
        headers={"Authorization": f"Bearer {callers.subject}", "X-Purpose": "self"},
        timeout=10,
    )
    expected = (400, "TRUSTED_DOCUMENT_REQUIRED")
    assert expected == (answer.status_code, answer.json()["errors"][0]["extensions"]["code"])
