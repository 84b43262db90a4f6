"""Domain exceptions. Messages name ids, fields and rules; never a PII value."""

from __future__ import annotations

from uuid import UUID

__all__ = [
    "Conflict",
    "CustomerNotFound",
    "InvalidInput",
    "VaultError",
]


class VaultError(Exception):
    """Base class for domain errors. ``code`` is a stable machine-readable name."""

    code = "VAULT_ERROR"


class InvalidInput(VaultError):
    """One input field broke a rule."""

    code = "BAD_USER_INPUT"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class CustomerNotFound(VaultError):
    code = "NOT_FOUND"

    def __init__(self, customer_id: UUID | str) -> None:
        super().__init__(f"customer {customer_id} not found")
        self.customer_id = customer_id


class Conflict(VaultError):
    """The change contradicts data already stored (a duplicate external id, say)."""

    code = "CONFLICT"
