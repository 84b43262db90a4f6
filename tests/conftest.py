"""Shared fixtures. Every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``CVAULT_TEST_POSTGRES_URL`` (default: the local server,
user postgres, database test). Each test gets its own schema, dropped after.
Under ``CI=true`` an unreachable PostgreSQL stops the run with an error; it is
never skipped there. ``CVAULT_TEST_DATABASES=sqlite`` limits a local run.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from vault.authorization.context import AccessContext
from vault.config import Environment, Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer, save_signer
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import Base

POSTGRES_URL = os.environ.get(
    "CVAULT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    b.strip()
    for b in os.environ.get("CVAULT_TEST_DATABASES", "sqlite,postgresql").split(",")
    if b.strip()
]
CTX = AccessContext.system("test")
pytest_plugins = ["tests.hsm"]  # SoftHSM2 tokens for the PKCS#11 key provider's tests
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_pg_state: dict[str, str | None] = {}


def _postgres_problem() -> str | None:
    if "checked" not in _pg_state:
        _pg_state["checked"] = "yes"
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            _pg_state["problem"] = None
        except OperationalError as exc:
            _pg_state["problem"] = f"PostgreSQL unreachable at {POSTGRES_URL}: {exc.orig}"
        finally:
            engine.dispose()
    return _pg_state["problem"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and "postgresql" not in BACKENDS:
        pytest.exit("CI must run the PostgreSQL leg: CVAULT_TEST_DATABASES lacks postgresql", 3)
    if IN_CI and "postgresql" in BACKENDS:
        problem = _postgres_problem()
        if problem is not None:
            pytest.exit(f"CI requires PostgreSQL. {problem}", 3)


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(scope="session")
def session_keyring(tmp_path_factory: pytest.TempPathFactory) -> Keyring:
    """One keyring for the session: creating keys is cheap, but tests need not repeat it."""
    path = tmp_path_factory.mktemp("keys") / "keyring.json"
    return Keyring.create(path, population=1_000_000)


@pytest.fixture(scope="session")
def audit_signer() -> Ed25519Signer:
    return Ed25519Signer.generate("customer-vault/test")


@pytest.fixture(scope="session")
def audit_key_file(tmp_path_factory: pytest.TempPathFactory, audit_signer: Ed25519Signer) -> Path:
    """The session's audit signing key as a file, for vaults opened from settings."""
    path = tmp_path_factory.mktemp("audit-key") / "audit-signing.json"
    save_signer(path, audit_signer)
    return path


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """A keyring of this test's own, for tests that rotate or retire keys."""
    return Keyring.create(tmp_path / "keys" / "keyring.json", population=1_000_000)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL database, dropped afterwards. An unreachable
    PostgreSQL skips the test, and fails it under CI=true (CI must not skip storage tests)."""
    problem = _postgres_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str | None]]:
    """(url, schema) of an empty database of the parametrised backend."""
    backend: str = request.param
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'vault.db'}", None
        return
    with postgres_schema() as schema:
        yield POSTGRES_URL, schema


@pytest.fixture
def database(database_url: tuple[str, str | None]) -> Iterator[Database]:
    url, schema = database_url
    engine = make_engine(url, schema=schema)
    Base.metadata.create_all(engine)
    db = Database(engine)
    yield db
    db.dispose()


@pytest.fixture
def settings(
    tmp_path: Path, database_url: tuple[str, str | None], audit_key_file: Path
) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url[0],
        keyring_path=tmp_path / "keys" / "keyring.json",
        environment=Environment.TEST,
        audit_key_path=audit_key_file,
        audit_origin="customer-vault/test",
    )


@pytest.fixture
def vault(
    settings: Settings,
    database: Database,
    session_keyring: Keyring,
    audit_signer: Ed25519Signer,
    clock: FrozenClock,
) -> Iterator[Vault]:
    v = Vault.open(
        settings, keyring=session_keyring, database=database, signer=audit_signer, clock=clock
    )
    yield v
    v.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, a run in which no PostgreSQL test passed is a failure."""
    if not IN_CI or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = reporter.stats.get("passed", []) if reporter is not None else []
    if not any("postgresql" in getattr(r, "nodeid", "").partition("[")[2] for r in passed):
        session.exitstatus = 3
        if reporter is not None:
            reporter.write_line(
                "CI: no PostgreSQL test passed; the leg must not be skipped", red=True
            )


def grant_all_consents(vault: Vault, *customer_ids: uuid.UUID) -> None:
    """Record a granted consent to every consent-based purpose, as the operator would on
    import: marketing callers then see these customers."""
    from consent import Privacy  # noqa: PLC0415 - tests of lower layers need not import it
    from policies.purposes import registry  # noqa: PLC0415

    ledger = Privacy.of(vault).ledger
    with vault.unit(CTX) as s:
        for cid in customer_ids:
            for purpose, info in registry().items():
                if info.needs_consent:
                    ledger.grant(s, cid, purpose)


_IDS = re.compile(r"[0-9a-f]{8}(-?[0-9a-f]{4}){3}-?[0-9a-f]{12}|[0-9a-f]{16,}|\d+\.\d+")


def without_ids(text: str) -> str:
    """``text`` without UUIDs, long hex digests and decimal numbers (durations, seconds):
    a short digit run of a value ("6789") turns up in those by chance now and then, never
    in what is left. For the tests that no PII value reaches a log, an entry or a body."""
    return _IDS.sub("", text)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Each test leaves structlog's configuration as it found it: a CLI command run in
    process configures logging for itself (``warning`` filters info events before any
    processor), and a later test's ``capture_logs`` would then see nothing."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
