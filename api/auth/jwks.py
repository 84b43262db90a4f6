"""What signs a token we accept: the JWS algorithms (never ``none``, never HMAC) and the
public keys of a JWK set, fetched over HTTPS.

JOSE comes from ``joserfc``, the JOSE library of the Authlib project and a
dependency of Authlib: ``authlib.jose`` is deprecated in the installed Authlib
(it warns on import) in favour of it.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

__all__ = [
    "ALLOWED_ALGORITHMS",
    "REGISTRY",
    "SIGNING_ALGORITHM",
    "FetchJwks",
    "check_jwks_url",
    "fetch_jwks",
    "public_keys",
]

# "Ed25519" is RFC 9864's fully-specified name for what RFC 8037 calls "EdDSA" with an
# Ed25519 key; we sign with it and accept both.
SIGNING_ALGORITHM: Final = "Ed25519"
ALLOWED_ALGORITHMS: Final = ("Ed25519", "EdDSA", "ES256", "RS256")

_MAX_JWKS_BYTES: Final = 1 << 20
_MIN_RSA_BITS: Final = 2048
_CURVES: Final = {"OKP": "Ed25519", "EC": "P-256"}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})


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


REGISTRY: Final = _Algorithms(algorithms=ALLOWED_ALGORITHMS)


def _rsa_bits(jwk: Mapping[str, Any]) -> int:
    modulus = jwk.get("n")
    if not isinstance(modulus, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(modulus + "=" * (-len(modulus) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def public_keys(document: object) -> dict[str, Key]:
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


def check_jwks_url(url: str) -> None:
    """Refuse a JWKS URL that is not https (plain http only on the loopback interface)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise ValueError("a JWKS URL must use https (plain http only on the loopback interface)")


def fetch_jwks(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """GET a JWK set document over HTTPS (at most 1 MiB)."""
    check_jwks_url(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
        body = response.read(_MAX_JWKS_BYTES + 1)
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError("the JWK set document is too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise TypeError("the JWK set document is not a JSON object")
    return document
