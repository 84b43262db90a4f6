"""Storage: SQLAlchemy models, engines and the unit of work."""

from vault.storage.db import Database, make_engine
from vault.storage.models import (
    Base,
    CustomerExternalIdRow,
    CustomerRow,
    DataKeyRow,
    InteractionRow,
)

__all__ = [
    "Base",
    "CustomerExternalIdRow",
    "CustomerRow",
    "DataKeyRow",
    "Database",
    "InteractionRow",
    "make_engine",
]
