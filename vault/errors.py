"""Domain exceptions. Messages name ids, fields and rules; never a PII value."""

from __future__ import annotations

from uuid import UUID

__all__ = [
    "AmbiguousMatch",
    "Conflict",
    "ConsentRequired",
    "CustomerErased",
    "CustomerNotFound",
    "DuplicateCustomer",
    "Forbidden",
    "InteractionNotFound",
    "InvalidInput",
    "LegalHoldActive",
    "ObjectionInForce",
    "ProcessingRefused",
    "ProcessingRestricted",
    "VaultError",
    "VersionConflict",
]


class VaultError(Exception):
    """Base class for domain errors. ``code`` is a stable machine-readable name."""

    code = "VAULT_ERROR"

    def extensions(self) -> dict[str, object]:
        """What an edge may add beside the code (GraphQL ``extensions``): ids and
        numbers only, never a value."""
        return {}


class InvalidInput(VaultError):
    """One input field broke a rule."""

    code = "BAD_USER_INPUT"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class Forbidden(VaultError):
    """The caller's kind of token cannot ask this at all (``me`` without a data subject's
    token); unlike a policy refusal, no policy line could allow it."""

    code = "FORBIDDEN"


class CustomerNotFound(VaultError):
    code = "NOT_FOUND"

    def __init__(self, customer_id: UUID | str) -> None:
        super().__init__(f"customer {customer_id} not found")
        self.customer_id = customer_id


class InteractionNotFound(VaultError):
    code = "NOT_FOUND"

    def __init__(self, interaction_id: UUID) -> None:
        super().__init__(f"interaction {interaction_id} not found")
        self.interaction_id = interaction_id


class CustomerErased(VaultError):
    """The customer was erased: nothing of it can be read, written or exported. When
    ``restored`` is true a restored database backup brought the record back although the
    keyring's shred list names it; ``cvault erasure reapply`` erases it again."""

    code = "CUSTOMER_ERASED"

    def __init__(self, customer_id: UUID, *, restored: bool = False) -> None:
        hint = (
            "; a restored backup brought its record back: run 'cvault erasure reapply'"
            if restored
            else ""
        )
        super().__init__(f"customer {customer_id} is erased{hint}")
        self.customer_id = customer_id
        self.restored = restored


class Conflict(VaultError):
    """The change contradicts data already stored (a duplicate external id, say)."""

    code = "CONFLICT"


class VersionConflict(Conflict):
    """The record changed since the caller read it: the version it expected is not the
    current one (or a concurrent write got there first). Names the customer id and the
    versions, never a field or a value; nothing of the refused change is written."""

    def __init__(self, customer_id: UUID, *, expected: int, current: int | None) -> None:
        now = "" if current is None else f" (it is at version {current})"
        super().__init__(
            f"customer {customer_id} changed since version {expected}{now}: read it again"
        )
        self.customer_id = customer_id
        self.expected = expected
        self.current = current

    def extensions(self) -> dict[str, object]:
        return {"expectedVersion": self.expected, "currentVersion": self.current}


class DuplicateCustomer(Conflict):
    """A customer with this email address, phone number or external id is already on
    file. Names the field and, when the caller may read that customer, its id; never
    the value."""

    code = "DUPLICATE"

    def __init__(self, field: str, existing_id: UUID | None = None) -> None:
        which = "" if existing_id is None else f" ({existing_id})"
        super().__init__(f"{field}: a customer with this value is already on file{which}")
        self.field = field
        self.existing_id = existing_id

    def extensions(self) -> dict[str, object]:
        existing = None if self.existing_id is None else str(self.existing_id)
        return {"field": self.field, "existingId": existing}


class AmbiguousMatch(VaultError):
    """A lookup that should name one customer matches several: the caller gets their ids
    (those it may read), never the value looked up."""

    code = "AMBIGUOUS"

    def __init__(self, field: str, ids: list[UUID]) -> None:
        super().__init__(f"{field}: {len(ids)} customers match; merge or pick one by id")
        self.field = field
        self.ids = ids

    def extensions(self) -> dict[str, object]:
        return {"field": self.field, "ids": [str(i) for i in self.ids]}


class LegalHoldActive(VaultError):
    """A legal hold is in force on the customer: it cannot be erased until it is lifted.
    Names the customer id and how many holds, never a hold's reason."""

    code = "LEGAL_HOLD"

    def __init__(self, customer_id: UUID, holds: int = 1) -> None:
        super().__init__(f"customer {customer_id} is under {holds} active legal hold(s)")
        self.customer_id = customer_id
        self.holds = holds


class ProcessingRefused(VaultError):
    """The caller's purpose may not process this customer's data (consent, restriction,
    objection). Names ids and purposes only."""

    code = "PROCESSING_REFUSED"
    reason = "refused"

    def __init__(self, customer_id: UUID | str, purpose: str, detail: str) -> None:
        super().__init__(f"customer {customer_id}: {detail} (purpose {purpose})")
        self.customer_id = customer_id
        self.purpose = purpose


class ConsentRequired(ProcessingRefused):
    """The purpose rests on consent and the customer has not granted it (or it expired)."""

    code = "CONSENT_REQUIRED"
    reason = "no_consent"


class ProcessingRestricted(ProcessingRefused):
    """The customer restricted processing (Art. 18); only a few purposes may go on."""

    code = "PROCESSING_RESTRICTED"
    reason = "restricted"


class ObjectionInForce(ProcessingRefused):
    """The customer objected to this purpose, or to direct marketing (Art. 21)."""

    code = "OBJECTION_IN_FORCE"
    reason = "objected"
