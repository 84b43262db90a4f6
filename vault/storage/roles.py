"""PostgreSQL two-role set-up: an owner that migrates, an application role that cannot
rewrite history.

The owner role owns the schema and runs ``cvault migrate``. The application role
(``CVAULT_DATABASE_URL`` of the servers) may read and insert everywhere, update and
delete the operational tables, and only read and insert the audit tables, so even
with the triggers switched off by someone it could not change the trail.
"""

from __future__ import annotations

import re

from vault.storage.models import APPEND_ONLY_TABLES, Base

__all__ = ["app_role_grants"]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def app_role_grants(role: str, schema: str = "public") -> list[str]:
    """The GRANT statements for ``role`` on the vault's tables in ``schema``."""
    for name, value in (("role", role), ("schema", schema)):
        if not _IDENT.match(value):
            raise ValueError(f"{name} must be a lower-case SQL identifier")
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    ]
    for table in sorted(Base.metadata.tables):
        rights = "SELECT, INSERT"
        if table not in APPEND_ONLY_TABLES:
            rights += ", UPDATE, DELETE"
        statements.append(f"GRANT {rights} ON {schema}.{table} TO {role}")
    statements.append(f"GRANT SELECT ON {schema}.alembic_version TO {role}")
    return statements
