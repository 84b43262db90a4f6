"""Bearer-token authentication: JWTs checked against a JWK set, and a local issuer for development.

JOSE comes from ``joserfc``, the JOSE library of the Authlib project and a
dependency of Authlib: ``authlib.jose`` is deprecated in the installed Authlib
(it warns on import) in favour of it.

What :meth:`TokenVerifier.verify` checks, in order: an ``Authorization: Bearer
<JWT>`` header; the ``alg`` (Ed25519/EdDSA, ES256 or RS256 only: never
``none``, never HMAC, so a public key can never be used as an HMAC secret); a
``kid`` naming a key of the JWK set (a JWKS URL is fetched again, at most once
every ``refetch_interval`` seconds, when a token names a key it does not hold,
which is how key rotation reaches us); the signature; ``iss`` and ``aud``;
``exp`` (required), ``nbf`` and ``iat`` with a leeway of 30 seconds; ``sub``
and ``role`` (a :class:`~policies.purposes.Role`); ``cid``, the customer id,
present exactly when the role is ``data_subject``; ``jti`` if present.

Every failure raises :class:`AuthError`, whose message is the same generic
sentence whatever went wrong; the specific reason is kept in ``reason`` for
logs, and never holds a claim value.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import GuestProtocol, JWKRegistry, Key, OKPKey
from joserfc.jws import JWSRegistry

from policies.purposes import Role
from vault.crypto import KeyringError
from vault.crypto.files import create_private_json, read_private_json
from vault.errors import InvalidInput

__all__ = [
    "ALLOWED_ALGORITHMS",
    "GENERIC_MESSAGE",
    "SIGNING_ALGORITHM",
    "AuthError",
    "LocalTokenIssuer",
    "Principal",
    "SigningKeyError",
    "TokenVerifier",
    "fetch_jwks",
]

GENERIC_MESSAGE: Final = "invalid or missing token"
# "Ed25519" is RFC 9864's fully-specified name for what RFC 8037 calls "EdDSA" with an
# Ed25519 key; we sign with it and accept both.
SIGNING_ALGORITHM: Final = "Ed25519"
ALLOWED_ALGORITHMS: Final = ("Ed25519", "EdDSA", "ES256", "RS256")
LEEWAY_SECONDS: Final = 30
DEFAULT_TTL: Final = timedelta(hours=1)

_MAX_TOKEN_CHARS: Final = 8192
_MAX_JWKS_BYTES: Final = 1 << 20
_MIN_RSA_BITS: Final = 2048
_CURVES: Final = {"OKP": "Ed25519", "EC": "P-256"}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ROLES: Final = [role.value for role in Role]
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})


class AuthError(Exception):
    """The request carries no valid bearer token. ``str()`` is always the same sentence."""

    code = "UNAUTHENTICATED"

    def __init__(self, reason: str) -> None:
        super().__init__(GENERIC_MESSAGE)
        self.reason = reason  # for logs: which check failed; never a claim value

    def __repr__(self) -> str:
        return f"AuthError(reason={self.reason!r})"


class SigningKeyError(Exception):
    """The local signing key file is missing, unreadable, malformed or too widely readable."""

    code = "SIGNING_KEY"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: who (``subject``), as what (``role``), bound to which customer.

    ``customer_id`` is set for ``data_subject`` tokens only: the domain layer
    serves such a caller its own record and nothing else.
    """

    subject: str
    role: Role
    customer_id: UUID | None = None
    token_id: str | None = None


class _Algorithms(JWSRegistry):
    """The JWS algorithms we accept, and nothing else.

    joserfc warns on every use of "EdDSA" (RFC 9864 deprecates the name);
    tokens from identity providers still carry it, so we accept it on purpose
    and without the warning. Key type and curve are checked by the algorithm.
    """

    def get_alg(self, name: str) -> JWSAlgModel:
        if not isinstance(name, str) or name not in ALLOWED_ALGORITHMS:
            raise UnsupportedAlgorithmError("algorithm is not allowed")
        return self.algorithms[name]


_REGISTRY: Final = _Algorithms(algorithms=ALLOWED_ALGORITHMS)


# -- key sets ------------------------------------------------------------------------


def _rsa_bits(jwk: Mapping[str, Any]) -> int:
    modulus = jwk.get("n")
    if not isinstance(modulus, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(modulus + "=" * (-len(modulus) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _public_keys(document: object) -> dict[str, Key]:
    """The usable public signing keys of a JWK set, by ``kid``.

    Private members are dropped, so a private JWK set passed by mistake still
    only verifies. Keys for encryption, other curves, RSA under 2048 bits and
    keys we cannot read are skipped (RFC 7517 section 5 lets a set hold keys
    a reader does not understand).
    """
    keys: dict[str, Key] = {}
    members = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(members, list):
        return keys
    for member in members:
        if not isinstance(member, Mapping) or member.get("use", "sig") != "sig":
            continue
        kty = member.get("kty")
        if kty in _CURVES:
            if member.get("crv") != _CURVES[kty]:
                continue
        elif kty != "RSA" or _rsa_bits(member) < _MIN_RSA_BITS:
            continue
        public = {name: value for name, value in member.items() if name not in _PRIVATE_MEMBERS}
        try:
            key = JWKRegistry.import_key(cast(dict[str, str | list[str]], public))
            key.ensure_kid()
        except (JoseError, ValueError, TypeError):
            continue
        keys.setdefault(cast(str, key.kid), key)
    return keys


FetchJwks = Callable[[str], Mapping[str, Any]]


def _check_jwks_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise ValueError("a JWKS URL must use https (plain http only on the loopback interface)")


def fetch_jwks(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """GET a JWK set document over HTTPS (at most 1 MiB)."""
    _check_jwks_url(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
        body = response.read(_MAX_JWKS_BYTES + 1)
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError("the JWK set document is too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise TypeError("the JWK set document is not a JSON object")
    return document


# -- verification ----------------------------------------------------------------------


def _bearer_token(header: str | None) -> str:
    if header is None or not header.strip():
        raise AuthError("no authorization header")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise AuthError("not a bearer credential")
    if not token or len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2 or " " in token:
        raise AuthError("malformed bearer token")
    return token


class TokenVerifier:
    """Checks bearer JWTs from one issuer for one audience against a JWK set.

    Give the keys either as a JWK set (``jwks``, a dict: a local issuer, tests)
    or as a URL (``jwks_url``): the URL is fetched on first use, again when the
    keys are older than ``max_key_age`` seconds, and again when a token names an
    unknown ``kid``; never more often than once every ``refetch_interval``
    seconds. If a fetch fails, the keys already held stay in use. ``fetch`` and
    ``clock`` (monotonic seconds) can be replaced, for tests.

    A token that passed every check is remembered (at most ``cache_size`` of them)
    with the key that verified it and its expiry: the same header sent again skips the
    signature check for as long as the token is unexpired and that key is still the
    one held for its ``kid`` (a rotated-out key drops its tokens).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        fetch: FetchJwks | None = None,
        leeway: int = LEEWAY_SECONDS,
        refetch_interval: float = 30.0,
        max_key_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        cache_size: int = 10_000,
    ) -> None:
        if (jwks is None) == (jwks_url is None):
            raise ValueError("give exactly one of jwks and jwks_url")
        if not issuer or not audience:
            raise ValueError("issuer and audience must not be empty")
        self._issuer = issuer
        self._audience = audience
        self._url = jwks_url
        self._fetch: FetchJwks = fetch if fetch is not None else fetch_jwks
        self._leeway = leeway
        self._refetch_interval = refetch_interval
        self._max_key_age = max_key_age
        self._clock = clock
        self._lock = threading.Lock()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_size = cache_size
        if jwks is not None:
            self._keys = _public_keys(jwks)
            if not self._keys:
                raise ValueError("the JWK set holds no usable signing key")
        else:
            assert jwks_url is not None  # noqa: S101 - narrowed by the check above
            if fetch is None:
                _check_jwks_url(jwks_url)
            self._keys = {}

    def __repr__(self) -> str:
        source = self._url if self._url is not None else f"<{len(self._keys)} local keys>"
        return f"TokenVerifier(issuer={self._issuer!r}, audience={self._audience!r}, keys={source})"

    # -- keys ----------------------------------------------------------------------

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._max_key_age

    def _refresh(self, now: float) -> str | None:
        """Fetch the key set once; return why it failed, or None. Caller holds the lock."""
        self._attempted_at = now
        assert self._url is not None  # noqa: S101 - only called for a URL
        try:
            document = self._fetch(self._url)
        except (OSError, ValueError, TypeError, http.client.HTTPException):
            return "key set fetch failed"
        keys = _public_keys(document)
        if not keys:
            return "fetched key set holds no usable key"
        self._keys = keys
        self._fetched_at = now
        return None

    def _key(self, kid: str) -> Key:
        key = self._keys.get(kid)
        if self._url is None:
            if key is None:
                raise AuthError("unknown key id")
            return key
        if key is not None and not self._stale(self._clock()):
            return key
        failure = None
        with self._lock:
            now = self._clock()
            key = self._keys.get(kid)
            may_fetch = (
                self._attempted_at is None or now - self._attempted_at >= self._refetch_interval
            )
            if (key is None or self._stale(now)) and may_fetch:
                failure = self._refresh(now)
                key = self._keys.get(kid)
        if key is None:
            raise AuthError(failure or "unknown key id")
        return key

    def _key_for(self, token: GuestProtocol) -> Key:
        kid = token.headers().get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token names no key id")
        return self._key(kid)

    # -- tokens ---------------------------------------------------------------------

    def verify(self, authorization_header: str | None, now: datetime | None = None) -> Principal:
        """The principal of a valid ``Authorization: Bearer`` header, or :class:`AuthError`."""
        token = _bearer_token(authorization_header)
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        timestamp = int((now or datetime.now(UTC)).timestamp())
        known = self._verified.get(token)
        if known is not None:
            if timestamp <= known.expires + self._leeway and self._current(known):
                return known.principal
            with self._lock:
                self._verified.pop(token, None)
        used: list[tuple[str, Key]] = []

        def key_for(guest: GuestProtocol) -> Key:
            key = self._key_for(guest)
            used.append((cast(str, guest.headers()["kid"]), key))
            return key

        try:
            claims = jwt.decode(token, key_for, registry=_REGISTRY).claims
            jwt.JWTClaimsRegistry(
                now=timestamp,
                leeway=self._leeway,
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": self._audience},
                exp={"essential": True},
                sub={"essential": True},
                role={"essential": True, "values": _ROLES},
            ).validate(claims)
        except JoseError as exc:
            claim = getattr(exc, "claim", None)
            reason = f"{exc.error}: {claim}" if isinstance(claim, str) else exc.error
            raise AuthError(reason or "invalid token") from None
        except (ValueError, TypeError, KeyError):
            raise AuthError("malformed token") from None
        principal = _principal(claims)
        expires = claims["exp"]
        if used and isinstance(expires, int):
            kid, key = used[-1]
            with self._lock:
                self._verified[token] = _Verified(principal, expires, kid, key)
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        return principal

    def _current(self, known: _Verified) -> bool:
        """Whether the key that verified a remembered token is still the one held (and,
        for a key set fetched from a URL, not older than ``max_key_age``)."""
        if self._keys.get(known.kid) is not known.key:
            return False
        return self._url is None or not self._stale(self._clock())


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires: int
    kid: str
    key: Key


def _principal(claims: Mapping[str, Any]) -> Principal:
    role_claim, subject = claims["role"], claims["sub"]
    if not isinstance(role_claim, str) or role_claim not in _ROLES:
        raise AuthError("invalid claim: role")
    if not isinstance(subject, str):
        raise AuthError("invalid claim: sub")
    role = Role(role_claim)
    token_id = claims.get("jti")
    if token_id is not None and not isinstance(token_id, str):
        raise AuthError("invalid claim: jti")
    cid = claims.get("cid")
    if role is not Role.DATA_SUBJECT:
        if cid is not None:
            raise AuthError("cid is only for data_subject tokens")
        return Principal(subject, role, None, token_id)
    if not isinstance(cid, str):
        raise AuthError("data_subject token without cid")
    try:
        customer_id = UUID(cid)
    except ValueError:
        raise AuthError("invalid claim: cid") from None
    return Principal(subject, role, customer_id, token_id)


# -- the local development issuer -------------------------------------------------------


def _read_private_jwk(path: Path) -> OKPKey:
    """Read the signing key; raises FileNotFoundError when there is none yet."""
    try:
        data = read_private_json(path, "signing key")
    except KeyringError as exc:
        raise SigningKeyError(str(exc)) from None
    if not (
        isinstance(data, dict)
        and data.get("kty") == "OKP"
        and data.get("crv") == "Ed25519"
        and isinstance(data.get("d"), str)
        and isinstance(data.get("kid"), str)
        and data["kid"]
    ):
        raise SigningKeyError(f"signing key {path} is not an Ed25519 private JWK with a kid")
    try:
        return OKPKey.import_key(data)
    except (JoseError, ValueError, TypeError):
        raise SigningKeyError(f"signing key {path} holds an unreadable key") from None


def _create_private_jwk(path: Path) -> OKPKey | None:
    """Write a new signing key, owner-only, atomically; None if another process won the race."""
    key = OKPKey.generate_key(
        "Ed25519", {"use": "sig", "alg": SIGNING_ALGORITHM}, private=True, auto_kid=True
    )
    return key if create_private_json(path, key.as_dict(private=True)) else None


class LocalTokenIssuer:
    """Mints tokens with the vault's own Ed25519 key, for development and tests.

    The private key is a JWK in a JSON file of mode 0600 (``cvault token
    issue`` uses it); :meth:`public_jwks` is what ``/.well-known/jwks.json``
    serves and what a :class:`TokenVerifier` checks against.
    """

    def __init__(self, key: OKPKey, *, issuer: str, audience: str) -> None:
        if not key.is_private or key.curve_name != "Ed25519" or not key.kid:
            raise SigningKeyError("a local issuer needs an Ed25519 private key with a kid")
        self._key = key
        self._issuer = issuer
        self._audience = audience

    def __repr__(self) -> str:
        return f"LocalTokenIssuer(issuer={self._issuer!r}, kid={self.kid!r})"

    @classmethod
    def load_or_create(cls, path: Path, issuer: str, audience: str) -> LocalTokenIssuer:
        """Use the signing key at ``path``, creating it (mode 0600) if there is none."""
        try:
            key = _read_private_jwk(path)
        except FileNotFoundError:
            created = _create_private_jwk(path)
            key = created if created is not None else _read_private_jwk(path)
        except OSError as exc:
            raise SigningKeyError(f"signing key {path} cannot be read ({exc.strerror})") from None
        return cls(key, issuer=issuer, audience=audience)

    @property
    def kid(self) -> str:
        return cast(str, self._key.kid)

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def audience(self) -> str:
        return self._audience

    def issue(
        self,
        sub: str,
        role: Role,
        customer_id: UUID | None = None,
        ttl: timedelta = DEFAULT_TTL,
        now: datetime | None = None,
    ) -> str:
        """A signed JWT for ``sub`` acting as ``role`` (with ``customer_id`` iff a data subject)."""
        role = Role(role)
        if not sub:
            raise InvalidInput("sub", "must not be empty")
        if (role is Role.DATA_SUBJECT) != (customer_id is not None):
            raise InvalidInput("customer_id", "is required for data_subject and only for it")
        if ttl <= timedelta(0):
            raise InvalidInput("ttl", "must be positive")
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        issued = int((now or datetime.now(UTC)).timestamp())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": sub,
            "role": role.value,
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl.total_seconds()),
            "jti": uuid.uuid4().hex,
        }
        if customer_id is not None:
            claims["cid"] = str(customer_id)
        header = {"alg": SIGNING_ALGORITHM, "kid": self.kid}
        return jwt.encode(header, claims, self._key, registry=_REGISTRY)

    def public_jwks(self) -> dict[str, Any]:
        """The public half of the signing key as a JWK set."""
        return {"keys": [self._key.as_dict(private=False)]}

    def verifier(self, *, leeway: int = LEEWAY_SECONDS) -> TokenVerifier:
        """A verifier for this issuer's tokens."""
        return TokenVerifier(
            issuer=self._issuer, audience=self._audience, jwks=self.public_jwks(), leeway=leeway
        )
