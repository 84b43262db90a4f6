"""Console sign-in through OpenID Connect against a real provider on loopback
(``oidc-provider-mock``): authorization code with PKCE, the role from a claim mapped from
the provider's groups, refusal of anyone who maps to no staff role."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread
from sqlalchemy import select
from starlette.testclient import TestClient

from api.app import create_app
from api.pages.console.settings import OidcConfig, role_from_claims
from vault.config import ConfigError
from vault.runtime import Vault
from vault.storage.models import AuditEntryRow

# oidc-provider-mock 0.3 still uses a hook that Authlib 1.9 warns about (in the provider).
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

USERS = [
    User(sub="ann", claims={"groups": ["privacy-team", "staff"]}),
    User(sub="bob", claims={"groups": ["sales"]}),
]


@pytest.fixture
def provider() -> Iterator[str]:
    with run_server_in_thread(user_claims=USERS) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def client(vault: Vault, provider: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CVAULT_OIDC_ISSUER", provider)
    monkeypatch.setenv("CVAULT_OIDC_CLIENT_ID", "customer-vault")
    monkeypatch.setenv("CVAULT_OIDC_CLIENT_SECRET", "test-secret")
    monkeypatch.setenv("CVAULT_OIDC_ROLES", "privacy-team=compliance_officer,it=admin")
    with TestClient(create_app(vault, webhook_every=None, sequence_every=60)) as test_client:
        yield test_client


def sign_in_as(client: TestClient, sub: str) -> httpx.Response:
    """The browser's round trip: the vault sends it to the provider, the person picks
    ``sub`` there, the provider sends it back with a code."""
    start = client.get("/console/oidc/login", follow_redirects=False)
    assert start.status_code == 302, start.status_code
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert (query["code_challenge_method"], query["response_type"]) == (["S256"], ["code"])
    chosen = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)
    back = urlsplit(chosen.headers["location"])
    assert back.path == "/console/oidc/callback"
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)  # type: ignore[return-value]


def test_an_officer_signs_in_through_the_provider(client: TestClient, vault: Vault) -> None:
    landed = sign_in_as(client, "ann")
    assert (landed.status_code, landed.headers["location"]) == (303, "/console")
    home = client.get("/console")
    assert 'data-actor="ann"' in home.text
    assert client.get("/console/requests").status_code == 200
    with vault.db.transaction() as s:
        rows = s.scalars(select(AuditEntryRow.canonical)).all()
    signed = [
        (e["actor"], e["role"], e["purpose"])
        for e in map(json.loads, rows)
        if e["detail"].get("kind") == "oidc"
    ]
    assert signed == [("ann", "compliance_officer", "compliance")]


def test_someone_whose_groups_map_to_no_staff_role_is_refused(client: TestClient) -> None:
    refused = sign_in_as(client, "bob")
    assert (refused.status_code, 'data-refused="oidc"' in refused.text) == (403, True)
    assert client.get("/console/requests", follow_redirects=False).status_code == 303


def test_a_callback_without_its_state_is_refused(client: TestClient) -> None:
    forged = client.get("/console/oidc/callback?code=abc&state=xyz", follow_redirects=False)
    assert forged.status_code == 403


def test_the_role_comes_from_the_configured_claim_and_mapping() -> None:
    env = {"CVAULT_OIDC_ISSUER": "https://idp.example", "CVAULT_OIDC_ROLE_CLAIM": "roles",
           "CVAULT_OIDC_ROLES": "dpo=compliance_officer,ops=admin"}  # fmt: skip
    config = OidcConfig.from_env(env)
    assert config is not None
    assert [
        role_from_claims(config, {"roles": ["dpo"]}),
        role_from_claims(config, {"roles": "ops"}),
        role_from_claims(config, {"roles": ["dpo", "ops"]}),  # two roles: refused
        role_from_claims(config, {"groups": ["dpo"]}),  # another claim
        role_from_claims(config, {"roles": ["data_subject"]}),
    ] == ["compliance_officer", "admin", None, None, None]
    assert OidcConfig.from_env({}) is None
    with pytest.raises(ConfigError):
        OidcConfig.from_env({"CVAULT_OIDC_ISSUER": "x", "CVAULT_OIDC_ROLES": "g=data_subject"})
