"""What a caller sees of a customer row: the ``Customer`` view under the caller's read
resolutions. Hidden fields are never decrypted; masked ones are decrypted and masked
here; an address given in parts shows its parts (only the city and country when masked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Row

from policies import Resolution
from policies.masking import mask, mask_postal_address
from vault.crypto import DataKey
from vault.customers.addresses import PostalAddress, parse_address
from vault.customers.models import PII, Customer, ExternalId
from vault.storage.models import CustomerRow
from vault.types import CustomerStatus, PiiField

__all__ = ["address_view", "customer_view", "needs_keys"]

_HIDDEN: Final = Resolution.HIDDEN.value


def needs_keys(reads: Mapping[str, str]) -> bool:
    """Whether the caller may see some PII field (so the data key is worth fetching)."""
    return any(reads.get(name, _HIDDEN) != _HIDDEN for name in PII)


def customer_view(
    row: CustomerRow | Row[Any],
    key: DataKey | None,
    external_ids: list[ExternalId],
    *,
    reads: Mapping[str, str],
) -> Customer:
    """The caller's view: hidden fields are None (and never decrypted), masked ones
    are decrypted and masked here; ``resolutions`` says which is which."""
    resolutions = {name: str(reads.get(name, _HIDDEN)) for name in PII}

    def clear(name: PiiField) -> str | None:
        """The decrypted value; None when absent or hidden (then never decrypted)."""
        token = getattr(row, f"{name}_ct")
        if token is None or key is None or resolutions[name.value] == _HIDDEN:
            return None
        return key.decrypt_text(token, field=name)

    def text(name: PiiField) -> str | None:
        value = clear(name)
        if value is None or resolutions[name.value] == Resolution.CLEAR.value:
            return value
        return mask(name.value, value)

    address, postal_address = address_view(
        clear(PiiField.ADDRESS), resolutions[PiiField.ADDRESS.value]
    )
    return Customer(
        id=row.id,
        status=CustomerStatus(row.status),
        email=text(PiiField.EMAIL),
        phone=text(PiiField.PHONE),
        first_name=text(PiiField.FIRST_NAME),
        last_name=text(PiiField.LAST_NAME),
        birth_date=text(PiiField.BIRTH_DATE),
        address=address,
        locale=row.locale,
        tier=row.tier,
        tags=list(row.tags or []),
        attributes=dict(row.attributes or {}),
        external_ids=external_ids,
        created_at=row.created_at,
        updated_at=row.updated_at,
        resolutions=resolutions,
        postal_address=postal_address,
    )


def address_view(value: str | None, how: str) -> tuple[str | None, PostalAddress | None]:
    """What the caller sees of a decrypted address, as one line and as parts: in clear
    all of it; masked, the city and country; free text has no parts (and masks whole)."""
    if value is None:
        return None, None
    parts = parse_address(value)
    if how == Resolution.CLEAR.value:
        return (value, None) if parts is None else (parts.formatted(), parts)
    if parts is None:
        return mask(PiiField.ADDRESS.value, value), None
    shown = PostalAddress(city=parts.city, country=parts.country)
    return mask_postal_address(parts.city, parts.country), shown
