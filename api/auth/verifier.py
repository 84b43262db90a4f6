"""Bearer-token verification: JWTs from one issuer for one audience, checked against a
JWK set held locally or fetched from a URL (and fetched again as keys rotate).

What :meth:`TokenVerifier.verify` checks, in order: an ``Authorization: Bearer
<JWT>`` header; the ``alg`` (Ed25519/EdDSA, ES256 or RS256 only: never
``none``, never HMAC, so a public key can never be used as an HMAC secret); a
``kid`` naming a key of the JWK set (a JWKS URL is fetched again, at most once
every ``refetch_interval`` seconds, when a token names a key it does not hold,
which is how key rotation reaches us); the signature; ``iss`` and ``aud``;
``exp`` (required), ``nbf`` and ``iat`` with a leeway of 30 seconds; ``sub``
and ``role`` (a :class:`~policies.purposes.Role`); ``cid``, the customer id,
present exactly when the role is ``data_subject``; ``jti`` if present.

Every failure raises :class:`~api.auth.errors.AuthError`, whose message is the same
generic sentence whatever went wrong; the specific reason is kept in ``reason`` for
logs, and never holds a claim value.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, Key

from api.auth.errors import AuthError
from api.auth.jwks import REGISTRY, FetchJwks, check_jwks_url, fetch_jwks, public_keys
from api.auth.models import Principal
from policies.purposes import Role

__all__ = ["LEEWAY_SECONDS", "TokenVerifier"]

LEEWAY_SECONDS: Final = 30

_MAX_TOKEN_CHARS: Final = 8192
_ROLES: Final = [role.value for role in Role]


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
            self._keys = public_keys(jwks)
            if not self._keys:
                raise ValueError("the JWK set holds no usable signing key")
        else:
            assert jwks_url is not None  # noqa: S101 - narrowed by the check above
            if fetch is None:
                check_jwks_url(jwks_url)
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
        keys = public_keys(document)
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
            claims = jwt.decode(token, key_for, registry=REGISTRY).claims
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
