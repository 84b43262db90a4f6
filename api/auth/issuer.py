"""The local development issuer: the vault's own Ed25519 signing key (a 0600 JSON file,
created on first use) that mints tokens for ``cvault token issue`` and tests, and
serves its public half as the JWK set a :class:`~api.auth.verifier.TokenVerifier` checks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from api.auth.errors import SigningKeyError
from api.auth.jwks import REGISTRY, SIGNING_ALGORITHM
from api.auth.verifier import LEEWAY_SECONDS, TokenVerifier
from policies.purposes import Role
from vault.crypto import KeyringError
from vault.crypto.files import create_private_json, read_private_json
from vault.errors import InvalidInput

__all__ = ["DEFAULT_TTL", "LocalTokenIssuer"]

DEFAULT_TTL: Final = timedelta(hours=1)


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
        return jwt.encode(header, claims, self._key, registry=REGISTRY)

    def public_jwks(self) -> dict[str, Any]:
        """The public half of the signing key as a JWK set."""
        return {"keys": [self._key.as_dict(private=False)]}

    def verifier(self, *, leeway: int = LEEWAY_SECONDS) -> TokenVerifier:
        """A verifier for this issuer's tokens."""
        return TokenVerifier(
            issuer=self._issuer, audience=self._audience, jwks=self.public_jwks(), leeway=leeway
        )
