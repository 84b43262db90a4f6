"""What a caller sees of a customer row: the ``Customer`` view under the caller's read
resolutions. Hidden fields are never decrypted; masked ones are decrypted and masked
here; an address given in parts shows its parts (only the city and country when masked).
The clear profile (locale, tier, tags) is shown or hidden per resource, and the custom
attributes per kind (:mod:`vault.customers.custom_attributes`).
A record read as erased (a tombstone, or a live row whose key the keyring shredded: an
erasure a restored backup undid) shows the tombstone, without decrypting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Row

from policies import Resolution
from policies.attributes import ATTRIBUTE_PREFIX, AttributeRegistry
from policies.mask_formats import MaskFormat, mask_as, mask_postal_address_as
from vault.crypto import DataKey
from vault.customers.addresses import PostalAddress, parse_address
from vault.customers.custom_attributes import UNDECLARED, attribute_reads, attributes_view
from vault.customers.models import PII, Customer, ExternalId
from vault.storage.models import CustomerRow
from vault.types import CustomerStatus, PiiField

__all__ = ["ERASED_FIELDS", "address_view", "audited_fields", "customer_view", "needs_keys"]

_HIDDEN: Final = Resolution.HIDDEN.value
_CLEAR: Final = Resolution.CLEAR.value
_DEFAULT: Final = MaskFormat.DEFAULT.value
# The clear profile's columns, each a read resource of its own (clear or hidden).
PROFILE_READS: Final = ("locale", "tier", "tags")
# How the audit trail records a read of an erased customer: no PII value was read.
ERASED_FIELDS: Final = dict.fromkeys(PII, "erased")


def audited_fields(customer: Customer) -> dict[str, str]:
    """The fields a read of ``customer`` records: how each resolved, or ``erased``."""
    return ERASED_FIELDS if customer.status is CustomerStatus.ERASED else customer.resolutions


def needs_keys(reads: Mapping[str, str]) -> bool:
    """Whether the caller may see some PII field or PII attribute (so the data key is worth
    fetching)."""
    return any(reads.get(name, _HIDDEN) != _HIDDEN for name in PII) or any(
        how != _HIDDEN and (name.startswith(ATTRIBUTE_PREFIX) or name == UNDECLARED)
        for name, how in reads.items()
    )


def customer_view(
    row: CustomerRow | Row[Any],
    key: DataKey | None,
    external_ids: list[ExternalId],
    *,
    reads: Mapping[str, str],
    attributes: AttributeRegistry,
    formats: Mapping[str, str] | None = None,
    erased: bool = False,
) -> Customer:
    """The caller's view: hidden fields are None (and never decrypted), masked ones
    are decrypted and masked here, each in its mask format (``formats``, the policy's
    p3 lines; ``default`` for a field it does not name); ``resolutions`` says which is
    which. ``erased`` reads a live row as its tombstone (its erasure was undone by a
    restored backup)."""
    formats = formats or {}
    resolutions = {name: str(reads.get(name, _HIDDEN)) for name in PII}
    for name in PROFILE_READS:
        resolutions[name] = _CLEAR if reads.get(name) == _CLEAR else _HIDDEN
    resolutions.update(attribute_reads(attributes, reads))
    if erased:
        return _tombstone(row, resolutions)

    def profile(name: str) -> Any:  # noqa: ANN401 - a column's value
        return getattr(row, name) if resolutions[name] == _CLEAR else None

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
        return mask_as(name.value, value, formats.get(name.value, _DEFAULT))

    address, postal_address = address_view(
        clear(PiiField.ADDRESS),
        resolutions[PiiField.ADDRESS.value],
        formats.get(PiiField.ADDRESS.value, _DEFAULT),
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
        locale=profile("locale"),
        tier=profile("tier"),
        tags=list(profile("tags") or []),
        attributes=attributes_view(
            attributes, row.attributes, row.sealed_attributes, key, resolutions
        ),
        external_ids=external_ids,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        resolutions=resolutions,
        postal_address=postal_address,
    )


def _tombstone(row: CustomerRow | Row[Any], resolutions: dict[str, str]) -> Customer:
    """What an erased customer reads as: its id and times, nothing else."""
    return Customer(
        id=row.id, status=CustomerStatus.ERASED, email=None, phone=None, first_name=None,
        last_name=None, birth_date=None, address=None, locale=None, tier=None, tags=[],
        attributes={}, external_ids=[], created_at=row.created_at, updated_at=row.updated_at,
        version=row.version, resolutions=resolutions,
    )  # fmt: skip


def address_view(
    value: str | None, how: str, fmt: str = _DEFAULT
) -> tuple[str | None, PostalAddress | None]:
    """What the caller sees of a decrypted address, as one line and as parts: in clear
    all of it; masked, the city and country (``country_only``: the country; ``redacted``:
    nothing); free text has no parts (and masks whole)."""
    if value is None:
        return None, None
    parts = parse_address(value)
    if how == Resolution.CLEAR.value:
        return (value, None) if parts is None else (parts.formatted(), parts)
    if parts is None:
        return mask_as(PiiField.ADDRESS.value, value, fmt), None
    if fmt == MaskFormat.REDACTED:
        return mask_postal_address_as(parts.city, parts.country, fmt), None
    city = None if fmt == MaskFormat.COUNTRY_ONLY else parts.city
    shown = PostalAddress(city=city, country=parts.country)
    return mask_postal_address_as(parts.city, parts.country, fmt), shown
