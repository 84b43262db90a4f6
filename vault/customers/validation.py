"""The rules a customer's input must meet, and what a write touches.

``PiiRules`` checks one PII value and gives the text to encrypt with its blind index;
the ``check_*`` functions check (and normalise) the profile fields and external ids (custom
attributes are checked in :mod:`vault.customers.custom_attributes`);
``written_resources`` and ``patched_resources`` name what a create or an update writes,
for the authorizer. Errors name the field and the rule, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Final

from vault.authorization.authorizer import PROFILE
from vault.crypto import BlindIndexer
from vault.customers.addresses import PostalAddress, address_text
from vault.customers.models import PII, UNSET, CustomerInput, CustomerPatch, ExternalId
from vault.customers.normalize import normalise_email, normalise_phone, parse_birth_date
from vault.errors import InvalidInput
from vault.text import ISO_DATE_RULE, check_text
from vault.types import PiiField

__all__ = [
    "PiiRules",
    "as_str",
    "check_external_id",
    "check_locale",
    "check_not_empty",
    "check_tags",
    "check_tier",
    "patched_resources",
    "written_resources",
]

_LOCALE: Final = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_MAX_TAGS: Final = 100


class PiiRules:
    """The checks of the PII fields: formats, lengths, a birth date in the past."""

    def __init__(
        self, bidx: BlindIndexer, clock: Callable[[], datetime], region: str | None
    ) -> None:
        self._bidx = bidx
        self._clock = clock
        self._region = region

    def __repr__(self) -> str:
        return "PiiRules()"

    def check(self, name: PiiField, value: object) -> tuple[str, int | None]:
        """Validate one PII value; return the text to encrypt and its blind index."""
        if name is PiiField.EMAIL:
            text = check_text(as_str(value, name), field=name, max_length=320)
            return text.strip(), self._bidx.index(name, normalise_email(text))
        if name is PiiField.PHONE:
            e164 = normalise_phone(as_str(value, name), region=self._region)
            return e164, self._bidx.index(name, e164)
        if name is PiiField.BIRTH_DATE:
            if not isinstance(value, date | str):
                raise InvalidInput(name, ISO_DATE_RULE)
            born = parse_birth_date(value)
            if born > self._clock().date() or born.year < 1900:
                raise InvalidInput(name, "must be a past date after 1900")
            return born.isoformat(), None
        if name is PiiField.ADDRESS and isinstance(value, PostalAddress):
            return address_text(value, name), None
        limit = 2000 if name is PiiField.ADDRESS else 200
        return check_text(as_str(value, name), field=name, max_length=limit), None


def check_not_empty(data: CustomerInput) -> None:
    """A customer needs at least one field: a PII value, a profile field or an external id."""
    given = [getattr(data, name) for name in PII]
    given += [data.locale, data.tier, data.tags, data.attributes, data.external_ids]
    if all(value is None or value in ([], {}) for value in given):
        raise InvalidInput("input", "a customer needs at least one field")


def written_resources(data: CustomerInput, attributes: Sequence[str] = ()) -> list[str]:
    """What a create writes; ``attributes`` are the resources of its custom attributes
    (``profile``, ``attr:<name>``)."""
    resources = [name for name in PII if getattr(data, name) is not None]
    if data.locale or data.tier or data.tags or data.external_ids:
        resources.append(PROFILE)
    resources.extend(attributes)
    return list(dict.fromkeys(resources)) or [PROFILE]


def patched_resources(patch: CustomerPatch, attributes: Sequence[str] = ()) -> list[str]:
    """What an update writes; ``attributes`` as for :func:`written_resources`."""
    resources = [name for name in PII if getattr(patch, name) is not UNSET]
    profile = (patch.locale, patch.tier, patch.tags)
    if any(v is not UNSET for v in profile) or patch.add_external_ids:
        resources.append(PROFILE)
    resources.extend(attributes)
    return list(dict.fromkeys(resources))


def check_external_id(ref: ExternalId, where: str = "external_ids") -> tuple[str, str]:
    """The source and id of one reference; ``where`` names it (``external_ids[2]``)."""
    source = check_text(ref.source, field=f"{where}.source", max_length=64).strip()
    return source, check_text(ref.external_id, field=f"{where}.external_id", max_length=200)


def as_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    return value


def check_locale(value: str | None) -> str | None:
    if value is None:
        return None
    if not _LOCALE.match(value):
        raise InvalidInput("locale", "must be a BCP 47 language tag such as 'fa-IR'")
    return value.replace("_", "-")


def check_tier(value: str | None) -> str | None:
    if value is None:
        return None
    return check_text(value, field="tier", max_length=64).strip()


def check_tags(values: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        raise InvalidInput("tags", "must be a list of strings")
    tags = [check_text(as_str(t, "tags"), field="tags", max_length=64).strip() for t in values]
    unique = list(dict.fromkeys(tags))
    if len(unique) > _MAX_TAGS:
        raise InvalidInput("tags", f"must hold at most {_MAX_TAGS} tags")
    return unique
