"""Bearer-token authentication: JWTs checked against a JWK set, and a local issuer for
development.

``errors`` (the refusals), ``models`` (the :class:`Principal` a token stands for),
``jwks`` (accepted algorithms and keys, the JWK set fetch), ``verifier`` (what a token
must satisfy), ``issuer`` (the development signing key and the tokens it mints).
"""

from api.auth.errors import GENERIC_MESSAGE, AuthError, SigningKeyError
from api.auth.issuer import LocalTokenIssuer
from api.auth.jwks import ALLOWED_ALGORITHMS, SIGNING_ALGORITHM, fetch_jwks
from api.auth.models import Principal
from api.auth.verifier import TokenVerifier

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
