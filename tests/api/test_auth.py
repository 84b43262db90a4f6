"""Bearer JWT authentication: what verify() accepts and refuses, JWKS rotation, the key file."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from api.auth import (
    GENERIC_MESSAGE,
    AuthError,
    LocalTokenIssuer,
    Principal,
    SigningKeyError,
    TokenVerifier,
    fetch_jwks,
)
from policies import Role
from vault.errors import InvalidInput

ISSUER = "https://vault.test"
AUDIENCE = "cvault-api"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
CUSTOMER = uuid.UUID("0f6c2a4e-8b1d-4c3e-9a57-2d1e0b9c8f71")
SUBJECT = "agent-7"
DROP = object()


def _okp(alg: str | None = "Ed25519") -> OKPKey:
    params: dict[str, str] = {"use": "sig"} if alg is None else {"use": "sig", "alg": alg}
    return OKPKey.generate_key("Ed25519", params, auto_kid=True)  # type: ignore[arg-type]


KEY = _okp()
OTHER_KEY = _okp()


def _jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def _claims(**changes: object) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "role": "support_agent",
        "iat": T,
        "nbf": T,
        "exp": T + 3600,
        "jti": "token-1",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not DROP}


def _sign(claims: Mapping[str, Any], key: Key = KEY, alg: str = "Ed25519", **header: str) -> str:
    return jwt.encode({"alg": alg, "kid": str(key.kid), **header}, dict(claims), key, [alg])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


def _hs256_with(secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": str(KEY.kid)}
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(_claims(role="admin")).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _tampered() -> str:
    head, _, sig = _sign(_claims()).split(".")
    return f"{head}.{_b64(json.dumps(_claims(role='admin')).encode())}.{sig}"


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=_jwks(KEY))


# -- accepted -------------------------------------------------------------------------------


def test_a_valid_token_gives_its_principal(verifier: TokenVerifier) -> None:
    """A token signed by a known key, for us, in its validity window, gives its principal."""
    principal = verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    assert Principal(SUBJECT, Role.SUPPORT_AGENT, None, "token-1") == principal


def test_a_data_subject_token_carries_its_customer_id(verifier: TokenVerifier) -> None:
    """A data_subject token binds the principal to the customer id of its cid claim."""
    token = _sign(_claims(role="data_subject", sub="self-1", cid=str(CUSTOMER), jti=DROP))
    assert Principal("self-1", Role.DATA_SUBJECT, CUSTOMER, None) == verifier.verify(
        f"Bearer {token}", now=NOW
    )


def test_the_scheme_is_case_insensitive_and_an_audience_list_is_fine(
    verifier: TokenVerifier,
) -> None:
    """'bearer' works like 'Bearer'; an aud list containing our audience is accepted."""
    token = _sign(_claims(aud=["other-api", AUDIENCE]))
    assert Role.SUPPORT_AGENT == verifier.verify(f"bearer  {token} ", now=NOW).role


def test_clock_skew_within_the_leeway_is_tolerated(verifier: TokenVerifier) -> None:
    """exp up to 30 s ago, and nbf/iat up to 30 s ahead, are accepted."""
    assert verifier.verify(f"Bearer {_sign(_claims(exp=T - 20))}", now=NOW)
    assert verifier.verify(f"Bearer {_sign(_claims(nbf=T + 20, iat=T + 20))}", now=NOW)


def test_es256_rs256_and_the_eddsa_name_are_accepted() -> None:
    """ES256 (P-256), RS256 (2048 bits) and Ed25519 keys under "EdDSA" verify, without warnings."""
    ec = ECKey.generate_key("P-256", {"use": "sig"}, auto_kid=True)
    rsa = RSAKey.generate_key(2048, {"use": "sig"}, auto_kid=True)
    legacy = _okp(alg=None)
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=_jwks(ec, rsa, legacy))
    with pytest.warns(SecurityWarning):  # joserfc warns when *signing* with the old name
        eddsa = _sign(_claims(), legacy, "EdDSA")
    for token in (_sign(_claims(), ec, "ES256"), _sign(_claims(), rsa, "RS256"), eddsa):
        assert SUBJECT == verifier.verify(f"Bearer {token}", now=NOW).subject


# -- refused ---------------------------------------------------------------------------------

Header = Callable[[], str | None]

REFUSED: dict[str, tuple[Header, str]] = {
    "expired": (
        lambda: f"Bearer {_sign(_claims(iat=T - 7200, nbf=T - 7200, exp=T - 3600))}",
        "expired_token: exp",
    ),
    "not yet valid": (
        lambda: f"Bearer {_sign(_claims(nbf=T + 300))}",
        "invalid_claim: nbf",
    ),
    "issued in the future": (
        lambda: f"Bearer {_sign(_claims(iat=T + 300, nbf=DROP))}",
        "invalid_claim: iat",
    ),
    "wrong issuer": (
        lambda: f"Bearer {_sign(_claims(iss='https://evil.test'))}",
        "invalid_claim: iss",
    ),
    "wrong audience": (
        lambda: f"Bearer {_sign(_claims(aud='other-api'))}",
        "invalid_claim: aud",
    ),
    "other issuer's key": (
        lambda: f"Bearer {_sign(_claims(), OTHER_KEY)}",
        "unknown key id",
    ),
    "other key under our kid": (
        lambda: f"Bearer {_sign(_claims(), OTHER_KEY, kid=str(KEY.kid))}",
        "bad_signature",
    ),
    "tampered payload": (
        lambda: f"Bearer {_tampered()}",
        "bad_signature",
    ),
    "alg none": (
        lambda: "Bearer " + _forge({"alg": "none", "typ": "JWT", "kid": str(KEY.kid)}, _claims()),
        "unsupported_algorithm",
    ),
    "HS256 keyed with the raw public key": (
        lambda: "Bearer " + _hs256_with(base64.urlsafe_b64decode(str(KEY.as_dict()["x"]) + "=")),
        "unsupported_algorithm",
    ),
    "HS256 keyed with the public JWK": (
        lambda: "Bearer " + _hs256_with(json.dumps(KEY.as_dict(private=False)).encode()),
        "unsupported_algorithm",
    ),
    "no header": (
        lambda: None,
        "no authorization header",
    ),
    "empty header": (
        lambda: "",
        "no authorization header",
    ),
    "no Bearer scheme": (
        lambda: _sign(_claims()),
        "not a bearer credential",
    ),
    "Basic scheme": (
        lambda: "Basic " + base64.b64encode(b"admin:admin").decode(),
        "not a bearer credential",
    ),
    "Bearer without token": (
        lambda: "Bearer ",
        "malformed bearer token",
    ),
    "garbage": (
        lambda: "Bearer garbage",
        "malformed bearer token",
    ),
    "three garbage segments": (
        lambda: "Bearer a.b.c",
        "decode_error",
    ),
    "oversized": (
        lambda: "Bearer " + "a" * 9000 + "." + "b" * 10 + "." + "c",
        "malformed bearer token",
    ),
    "unknown role": (
        lambda: f"Bearer {_sign(_claims(role='superuser'))}",
        "invalid_claim: role",
    ),
    "role as a list": (
        lambda: f"Bearer {_sign(_claims(role=['admin']))}",
        "invalid claim: role",
    ),
    "data_subject without cid": (
        lambda: f"Bearer {_sign(_claims(role='data_subject'))}",
        "data_subject token without cid",
    ),
    "cid not a uuid": (
        lambda: f"Bearer {_sign(_claims(role='data_subject', cid='42'))}",
        "invalid claim: cid",
    ),
    "cid on another role": (
        lambda: f"Bearer {_sign(_claims(cid=str(CUSTOMER)))}",
        "cid is only for data_subject tokens",
    ),
    "no sub": (
        lambda: f"Bearer {_sign(_claims(sub=DROP))}",
        "missing_claim: sub",
    ),
    "empty sub": (
        lambda: f"Bearer {_sign(_claims(sub=''))}",
        "invalid_claim: sub",
    ),
    "no exp": (
        lambda: f"Bearer {_sign(_claims(exp=DROP))}",
        "missing_claim: exp",
    ),
    "no role": (
        lambda: f"Bearer {_sign(_claims(role=DROP))}",
        "missing_claim: role",
    ),
    "no iss": (
        lambda: f"Bearer {_sign(_claims(iss=DROP))}",
        "missing_claim: iss",
    ),
    "jti not a string": (
        lambda: f"Bearer {_sign(_claims(jti=7))}",
        "invalid_claim: jti",
    ),
    "no kid": (
        lambda: "Bearer " + jwt.encode({"alg": "Ed25519"}, _claims(), KEY, ["Ed25519"]),
        "token names no key id",
    ),
}


@pytest.mark.parametrize(("make_header", "reason"), list(REFUSED.values()), ids=list(REFUSED))
def test_every_bad_token_raises_the_same_generic_error(
    verifier: TokenVerifier, make_header: Header, reason: str
) -> None:
    """Every refusal is an AuthError (UNAUTHENTICATED) with one generic message; the reason,
    kept for logs, names the failed check and no claim value."""
    with pytest.raises(AuthError) as caught:
        verifier.verify(make_header(), now=NOW)
    error = caught.value
    assert GENERIC_MESSAGE == str(error)
    assert "UNAUTHENTICATED" == error.code
    assert reason == error.reason
    assert SUBJECT not in error.reason
    assert str(CUSTOMER) not in error.reason
    assert error.__cause__ is None


def test_a_verifier_never_holds_a_private_key() -> None:
    """A private JWK set given by mistake is reduced to its public halves."""
    private = {"keys": [KEY.as_dict(private=True)]}
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=private)
    assert verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    assert str(KEY.as_dict(private=True)["d"]) not in repr(vars(verifier))


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": []},
        {"keys": [{"kty": "oct", "k": _b64(b"s" * 32)}]},
        {"keys": [{**KEY.as_dict(private=False), "use": "enc"}]},
        {"nope": 1},
    ],
    ids=["empty", "symmetric", "encryption", "no keys member"],
)
def test_a_jwk_set_without_a_signing_key_is_refused(jwks: dict[str, Any]) -> None:
    """A local JWK set must hold at least one usable public signing key."""
    with pytest.raises(ValueError, match="no usable signing key"):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks)


def test_a_jwks_url_must_use_https() -> None:
    """Plain http is refused for a JWKS URL, except on the loopback interface."""
    with pytest.raises(ValueError, match="https"):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url="http://idp.example/jwks")
    with pytest.raises(ValueError, match="https"):
        fetch_jwks("http://idp.example/jwks")
    assert TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url="http://127.0.0.1:9/jwks")


def test_keys_come_from_exactly_one_source() -> None:
    """A verifier takes a JWK set or a JWKS URL, not both and not neither."""
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValueError, match="exactly one"):
        TokenVerifier(
            issuer=ISSUER, audience=AUDIENCE, jwks=_jwks(KEY), jwks_url="https://idp.test/jwks"
        )


# -- JWKS fetching and rotation -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Jwks:
    """A JWKS endpoint in memory that counts its fetches."""

    def __init__(self, *keys: Key) -> None:
        self.document = _jwks(*keys)
        self.calls = 0
        self.failing = False

    def __call__(self, url: str) -> Mapping[str, Any]:
        assert "https://idp.test/jwks" == url
        self.calls += 1
        if self.failing:
            raise OSError("connection refused")
        return self.document


def _remote(jwks: Jwks, clock: Clock, max_key_age: float = 3600.0) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url="https://idp.test/jwks",
        fetch=jwks,
        clock=clock,
        max_key_age=max_key_age,
    )


def test_keys_are_fetched_once_and_cached() -> None:
    """The JWK set is fetched on first use and then served from memory."""
    jwks, clock = Jwks(KEY), Clock()
    verifier = _remote(jwks, clock)
    for _ in range(5):
        verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
        clock.now += 60
    assert 1 == jwks.calls


def test_an_unknown_kid_triggers_exactly_one_refetch_then_succeeds_after_rotation() -> None:
    """After the issuer rotates keys, the first token with the new kid refetches once and passes."""
    jwks, clock = Jwks(KEY), Clock()
    verifier = _remote(jwks, clock)
    verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    jwks.document = _jwks(KEY, OTHER_KEY)  # the issuer rotates
    clock.now += 31
    principal = verifier.verify(f"Bearer {_sign(_claims(), OTHER_KEY)}", now=NOW)
    assert SUBJECT == principal.subject
    assert 2 == jwks.calls
    verifier.verify(f"Bearer {_sign(_claims(), OTHER_KEY)}", now=NOW)
    assert 2 == jwks.calls


def test_a_still_unknown_kid_refetches_once_and_fails() -> None:
    """A kid the refetched set lacks fails after one fetch; repeats within 30 s fetch nothing."""
    jwks, clock = Jwks(KEY), Clock()
    verifier = _remote(jwks, clock)
    verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    clock.now += 31
    stranger = _okp()
    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            verifier.verify(f"Bearer {_sign(_claims(), stranger)}", now=NOW)
        assert GENERIC_MESSAGE == str(caught.value)
    assert 2 == jwks.calls
    clock.now += 31
    with pytest.raises(AuthError):
        verifier.verify(f"Bearer {_sign(_claims(), stranger)}", now=NOW)
    assert 3 == jwks.calls


def test_an_unknown_kid_right_after_a_fetch_does_not_refetch() -> None:
    """Refetches are rate-limited: within 30 s of the last fetch an unknown kid fails at once."""
    jwks, clock = Jwks(KEY), Clock()
    verifier = _remote(jwks, clock)
    verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    jwks.document = _jwks(KEY, OTHER_KEY)
    clock.now += 10
    with pytest.raises(AuthError):
        verifier.verify(f"Bearer {_sign(_claims(), OTHER_KEY)}", now=NOW)
    assert 1 == jwks.calls


def test_a_failed_fetch_keeps_the_keys_already_held() -> None:
    """When the JWKS endpoint is down at refresh time, the keys already fetched stay in use."""
    jwks, clock = Jwks(KEY), Clock()
    verifier = _remote(jwks, clock, max_key_age=60)
    verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    jwks.failing = True
    clock.now += 61
    assert verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    assert 2 == jwks.calls


def test_an_unreachable_jwks_endpoint_refuses_tokens() -> None:
    """With no keys fetched yet and the endpoint down, every token is refused."""
    jwks, clock = Jwks(KEY), Clock()
    jwks.failing = True
    with pytest.raises(AuthError) as caught:
        _remote(jwks, clock).verify(f"Bearer {_sign(_claims())}", now=NOW)
    assert GENERIC_MESSAGE == str(caught.value)


def test_a_key_withdrawn_from_the_set_stops_verifying_once_refreshed() -> None:
    """Keys older than max_key_age are refetched, and a key withdrawn from the set stops working."""
    jwks, clock = Jwks(KEY), Clock()
    verifier = _remote(jwks, clock, max_key_age=300)
    verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)
    jwks.document = _jwks(OTHER_KEY)
    clock.now += 301
    with pytest.raises(AuthError):
        verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)


# -- the local issuer and its key file -------------------------------------------------------------


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "signing-key.json"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_file_is_created_owner_only(key_path: Path) -> None:
    """load_or_create writes an Ed25519 private JWK with a kid, mode 0600, and nothing else."""
    issuer = LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)
    assert 0o600 == _mode(key_path)
    assert 0o700 == _mode(key_path.parent)
    assert [key_path.name] == [p.name for p in key_path.parent.iterdir()]
    stored = json.loads(key_path.read_text(encoding="utf-8"))
    assert ("OKP", "Ed25519", issuer.kid) == (stored["kty"], stored["crv"], stored["kid"])
    assert "d" in stored


def test_the_key_file_is_reused(key_path: Path) -> None:
    """A second load_or_create uses the key already on disk: tokens stay valid across restarts."""
    first = LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)
    second = LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)
    assert first.kid == second.kid
    token = first.issue("ops", Role.ADMIN, now=NOW)
    assert Role.ADMIN == second.verifier().verify(f"Bearer {token}", now=NOW).role


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_file_readable_by_others_is_refused(key_path: Path, mode: int) -> None:
    """A signing key file readable by group or others is refused, not used."""
    LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)
    key_path.chmod(mode)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps(_jwks(KEY)["keys"][0]),
        json.dumps({"kty": "oct", "k": "c2VjcmV0"}),
    ],
    ids=["not json", "not an object", "public key only", "symmetric key"],
)
def test_a_malformed_key_file_is_refused(key_path: Path, content: str) -> None:
    """A key file that is not an Ed25519 private JWK with a kid is refused."""
    key_path.parent.mkdir(mode=0o700)
    key_path.write_text(content, encoding="utf-8")
    key_path.chmod(0o600)
    with pytest.raises(SigningKeyError):
        LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)


def test_issued_tokens_verify_and_carry_the_claims(key_path: Path) -> None:
    """issue() mints tokens the issuer's own JWKS verifies, with the role and customer id given."""
    issuer = LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=issuer.public_jwks())
    token = issuer.issue("self-9", Role.DATA_SUBJECT, CUSTOMER, ttl=timedelta(minutes=5), now=NOW)
    principal = verifier.verify(f"Bearer {token}", now=NOW + timedelta(minutes=4))
    assert ("self-9", Role.DATA_SUBJECT, CUSTOMER) == (
        principal.subject,
        principal.role,
        principal.customer_id,
    )
    assert principal.token_id
    with pytest.raises(AuthError):
        verifier.verify(f"Bearer {token}", now=NOW + timedelta(minutes=6))


def test_the_public_jwks_holds_no_private_member(key_path: Path) -> None:
    """public_jwks() and the issuer's repr show no private key material."""
    issuer = LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)
    private = json.loads(key_path.read_text(encoding="utf-8"))["d"]
    [jwk] = issuer.public_jwks()["keys"]
    assert {"kty", "crv", "x", "kid", "use", "alg"} == set(jwk)
    assert private not in json.dumps(issuer.public_jwks())
    assert private not in repr(issuer)


@pytest.mark.parametrize(
    ("role", "customer_id", "ttl"),
    [
        (Role.DATA_SUBJECT, None, timedelta(hours=1)),
        (Role.SUPPORT_AGENT, CUSTOMER, timedelta(hours=1)),
        (Role.SUPPORT_AGENT, None, timedelta(0)),
    ],
    ids=["data subject without id", "customer id on another role", "zero ttl"],
)
def test_issue_refuses_inconsistent_requests(
    key_path: Path, role: Role, customer_id: uuid.UUID | None, ttl: timedelta
) -> None:
    """issue() needs a customer id exactly for data_subject, and a positive lifetime."""
    issuer = LocalTokenIssuer.load_or_create(key_path, ISSUER, AUDIENCE)
    with pytest.raises(InvalidInput):
        issuer.issue("someone", role, customer_id, ttl=ttl, now=NOW)


# -- remembered tokens ----------------------------------------------------------------------


def test_a_verified_token_is_remembered_and_not_checked_again(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same header sent again is served from memory: no second signature check."""
    header = f"Bearer {_sign(_claims())}"
    first = verifier.verify(header, now=NOW)

    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr("api.auth.verifier.jwt.decode", no_decoding)
    assert first == verifier.verify(header, now=NOW + timedelta(minutes=30))


def test_a_remembered_token_still_expires(verifier: TokenVerifier) -> None:
    """Remembering a token never stretches its life: past exp (and the leeway) it fails."""
    header = f"Bearer {_sign(_claims())}"
    verifier.verify(header, now=NOW)
    assert verifier.verify(header, now=NOW + timedelta(seconds=3600 + 30))
    with pytest.raises(AuthError) as caught:
        verifier.verify(header, now=NOW + timedelta(seconds=3600 + 31))
    assert GENERIC_MESSAGE == str(caught.value)


def test_a_remembered_token_fails_once_its_key_leaves_the_set() -> None:
    """A token remembered under a key that a refreshed key set no longer holds is refused."""
    jwks, clock = Jwks(KEY, OTHER_KEY), Clock()
    verifier = _remote(jwks, clock, max_key_age=300)
    header = f"Bearer {_sign(_claims(), OTHER_KEY)}"
    verifier.verify(header, now=NOW)
    jwks.document = _jwks(KEY)
    clock.now += 301
    verifier.verify(f"Bearer {_sign(_claims())}", now=NOW)  # refreshes the set
    with pytest.raises(AuthError):
        verifier.verify(header, now=NOW)
