"""The console's OpenID Connect settings from the environment, and the mapping of an
identity provider's claims to one vault staff role."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vault.config import ConfigError
from vault.sign_in import STAFF_PURPOSES

__all__ = ["OidcConfig", "role_from_claims"]


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    role_claim: str = "groups"
    roles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OidcConfig | None:
        """The configuration, or None without ``CVAULT_OIDC_ISSUER``; a mapping to a role
        that is not a staff role is a configuration error."""
        env = os.environ if env is None else env
        issuer = env.get("CVAULT_OIDC_ISSUER", "").strip()
        if not issuer:
            return None
        roles: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in env.get("CVAULT_OIDC_ROLES", "").split(","))):
            group, sep, role = pair.partition("=")
            if not sep or role.strip() not in STAFF_PURPOSES:
                raise ConfigError("CVAULT_OIDC_ROLES maps groups to compliance_officer or admin")
            roles[group.strip()] = role.strip()
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=env.get("CVAULT_OIDC_CLIENT_ID", "customer-vault"),
            client_secret=env.get("CVAULT_OIDC_CLIENT_SECRET", ""),
            role_claim=env.get("CVAULT_OIDC_ROLE_CLAIM", "groups").strip() or "groups",
            roles=roles,
        )


def role_from_claims(config: OidcConfig, claims: Mapping[str, Any]) -> str | None:
    """The one staff role the claims map to, or None (no staff role, or several)."""
    value = claims.get(config.role_claim)
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    mapped = {config.roles.get(v, "" if config.roles else v) for v in values if isinstance(v, str)}
    staff = mapped & set(STAFF_PURPOSES)
    return staff.pop() if len(staff) == 1 else None
