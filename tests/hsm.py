"""A SoftHSM2 of the test process's own, and a fresh token for each test that asks.

The session fixture writes a ``softhsm2.conf`` with its own token directory in a
temporary folder and points ``SOFTHSM2_CONF`` at it (SoftHSM2 reads it when the module
is loaded, once per process); each ``hsm_token`` is a new token in it, initialised with
``softhsm2-util`` under a label, PIN and SO PIN of its own. No test touches the
machine's tokens or another test's. Without SoftHSM2 the HSM tests are skipped, except
under ``CI=true`` where they fail (``.ci/run`` installs ``softhsm2`` when it is missing).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import IN_CI

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


@dataclass(frozen=True)
class HsmToken:
    """A token made for one test. The PIN is random, so a test can search for it."""

    module: str
    label: str
    pin: str = field(repr=False)
    so_pin: str = field(repr=False)


def _softhsm_util() -> str:
    util = shutil.which("softhsm2-util")
    problem = None
    if not SOFTHSM_MODULE.exists():
        problem = f"{SOFTHSM_MODULE} is missing (apt-get install softhsm2)"
    elif util is None:
        problem = "softhsm2-util is missing (apt-get install softhsm2)"
    if problem is not None or util is None:
        message = problem or "softhsm2-util is missing"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return util


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder of this process's SoftHSM2: ``softhsm2.conf`` and ``tokens/``."""
    _softhsm_util()
    folder = tmp_path_factory.mktemp("softhsm")
    tokens = folder / "tokens"
    tokens.mkdir(mode=0o700)
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        yield folder


@pytest.fixture
def hsm_token(softhsm: Path) -> Iterator[HsmToken]:
    """A new, empty token of this test's own; every provider on it is closed by the end."""
    from vault.crypto.hsm_token import open_sessions  # noqa: PLC0415 - needs python-pkcs11

    token = HsmToken(
        module=str(SOFTHSM_MODULE),
        label=f"cvault-{uuid.uuid4().hex[:12]}",
        pin=f"pin-{secrets.token_hex(6)}",
        so_pin=f"so-{secrets.token_hex(6)}",
    )
    subprocess.run(
        [
            _softhsm_util(),
            "--init-token",
            "--free",
            "--label",
            token.label,
            "--so-pin",
            token.so_pin,
            "--pin",
            token.pin,
        ],
        check=True,
        capture_output=True,
        env={"SOFTHSM2_CONF": str(softhsm / "softhsm2.conf"), "PATH": "/usr/bin:/bin"},
    )
    yield token
    left = open_sessions(token.module)
    assert not left, "a test left a PKCS#11 provider open (close the keyring or vault)"
