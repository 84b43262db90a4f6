"""GraphiQL loads nothing from another host: the vault serves React, GraphiQL and its
explorer (pinned by hash), the page has no inline script or style, and its CSP is strict."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from starlette.testclient import TestClient

from api.app import create_app
from api.pages import STATIC
from api.pages.graphiql import GRAPHIQL_CSP, VENDORED
from vault.config import Environment
from vault.runtime import Vault


def test_graphiql_loads_only_the_vaults_own_files(vault: Vault) -> None:
    """Every script and style sheet of the page is a path of this server, each vendored
    file is served and matches its integrity hash; no inline script; CSP without
    'unsafe-inline' or 'unsafe-eval' and with frame-ancestors 'none'."""
    import dataclasses  # noqa: PLC0415

    development = Vault.open(
        dataclasses.replace(vault.settings, environment=Environment.DEVELOPMENT),
        keyring=vault.keyring, database=vault.db, signer=vault.audit.signer, clock=vault.clock,
    )  # fmt: skip
    with TestClient(create_app(development, webhook_every=None)) as client:
        page = client.get("/graphql", headers={"accept": "text/html"})
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert [s for s in sources if not s.startswith("/static/")] == []
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None
        csp = page.headers["content-security-policy"]
        assert (page.status_code, csp, "unsafe" in csp) == (200, GRAPHIQL_CSP, False)
        assert "frame-ancestors 'none'" in csp
        for source in sources:
            assert client.get(source).status_code == 200, source
    for name, digest in VENDORED.items():
        data = (STATIC / "vendor" / "graphiql" / name).read_bytes()
        assert base64.b64encode(hashlib.sha384(data).digest()).decode() == digest, name


def test_every_vendored_file_has_its_licence_beside_it() -> None:
    folder = Path(STATIC) / "vendor" / "graphiql"
    licences = sorted(p.name for p in folder.glob("LICENSE.*"))
    assert licences == [
        "LICENSE.graphiql",
        "LICENSE.plugin-explorer",
        "LICENSE.react",
        "LICENSE.react-dom",
    ]
