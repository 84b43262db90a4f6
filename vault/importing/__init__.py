"""Importing: CSV and JSON Lines files of customers or interactions, checked row by row
(errors name the line and the column, never the value), written through the services.

Owns: ``service`` (``import_customers``, ``import_interactions``: batches written
through the services, known customers and stored external ids), ``reader`` (file
formats: CSV and JSON Lines records, header checks, undecodable bytes), ``validation``
(one record to a ``CustomerInput`` or ``InteractionInput``: where a row is validated),
``matching`` (duplicate detection for a batch of customers: ``OnDuplicate``),
``models`` (the columns, ``RowError``, ``ImportReport``), ``errors``
(``ImportFileError``).
Modules import in this order: service -> validation -> reader -> models, errors.
May import: :mod:`vault.runtime` and every feature below it, the kernel.
"""

from __future__ import annotations

from vault.importing.errors import ImportFileError
from vault.importing.matching import OnDuplicate
from vault.importing.models import (
    CUSTOMER_COLUMNS,
    IMPORTED_TABLES,
    INTERACTION_COLUMNS,
    ImportReport,
    RowError,
)
from vault.importing.service import import_customers, import_interactions

__all__ = [
    "CUSTOMER_COLUMNS",
    "IMPORTED_TABLES",
    "INTERACTION_COLUMNS",
    "ImportFileError",
    "ImportReport",
    "OnDuplicate",
    "RowError",
    "import_customers",
    "import_interactions",
]
