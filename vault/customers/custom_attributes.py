"""Custom attributes: checked against their declarations, split into the clear ones (kept
in the ``attributes`` column for segment rules) and the PII ones (each sealed under the
customer's data key for the field ``attr:<name>``, kept in ``sealed_attributes``), and
shown to a caller as the policy resolves them.

A name that is not declared is refused on write (the error names it: a declared-looking
name is a name, not a value). Stored values of names that are no longer declared (or
were stored before declarations were enforced) are kept and shown only to callers the
policy grants ``undeclared_attributes``; a patch may clear them with ``null``.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from policies import Resolution
from policies.attributes import (
    AttributeInfo,
    AttributeRegistry,
    AttributeType,
    attribute_resource,
)
from policies.masking import mask_attribute
from policies.purposes import Resource
from vault.crypto import DataKey
from vault.errors import InvalidInput
from vault.text import check_text

if TYPE_CHECKING:
    from vault.storage.models import CustomerRow

__all__ = [
    "AttributeRules",
    "CheckedAttributes",
    "apply_attributes",
    "attributes_view",
    "open_value",
    "seal_value",
]

_MAX_BYTES: Final = 16_384
_MAX_STRING: Final = 1000
_MAX_INTEGER: Final = 2**63 - 1
_SHOWN_NAME: Final = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_HIDDEN: Final = Resolution.HIDDEN.value
_CLEAR: Final = Resolution.CLEAR.value
ATTRIBUTES: Final = Resource.ATTRIBUTES.value
UNDECLARED: Final = Resource.UNDECLARED_ATTRIBUTES.value


@dataclass(frozen=True, slots=True)
class CheckedAttributes:
    """A write's attributes, checked: clear values, PII values (to seal), names to clear."""

    clear: dict[str, Any] = field(default_factory=dict, repr=False)
    pii: dict[str, Any] = field(default_factory=dict, repr=False)
    cleared: tuple[str, ...] = ()

    def resources(self, registry: AttributeRegistry) -> list[str]:
        """The policy resources this write touches: ``profile`` for clear values (and for
        clearing an undeclared one), ``attr:<name>`` for each PII one set or cleared."""
        out: list[str] = []
        for name in (*self.clear, *self.pii, *self.cleared):
            info = registry.get(name)
            out.append(attribute_resource(name) if info and info.pii else Resource.PROFILE.value)
        return list(dict.fromkeys(out))


class AttributeRules:
    """The checks of custom attributes under one set of declarations."""

    def __init__(self, registry: AttributeRegistry) -> None:
        self.registry = registry

    def __repr__(self) -> str:
        return f"AttributeRules({self.registry!r})"

    def check(self, values: object, *, patch: bool = False) -> CheckedAttributes:
        """Check a write's attributes. ``null`` leaves a name out on create and clears it
        on a patch (an undeclared name may only be cleared)."""
        if not isinstance(values, Mapping):
            raise InvalidInput("attributes", "must be a JSON object")
        try:
            encoded = json.dumps(dict(values), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidInput("attributes", "must be JSON-serialisable without NaN") from None
        if len(encoded.encode("utf-8")) > _MAX_BYTES:
            raise InvalidInput("attributes", f"must be at most {_MAX_BYTES} bytes as JSON")
        clear: dict[str, Any] = {}
        pii: dict[str, Any] = {}
        cleared: list[str] = []
        for name, value in values.items():
            if not isinstance(name, str):
                raise InvalidInput("attributes", "names must be strings")
            info = self.registry.get(name)
            if value is None:
                if patch:
                    cleared.append(name)
                elif info is None:
                    raise _undeclared(name)
                continue
            if info is None:
                raise _undeclared(name)
            (pii if info.pii else clear)[name] = check_value(info, value)
        return CheckedAttributes(clear, pii, tuple(cleared))


def _undeclared(name: str) -> InvalidInput:
    shown = name if _SHOWN_NAME.match(name) else "<name>"
    return InvalidInput(
        f"attributes.{shown}",
        "is not a declared attribute (policies/attributes.toml, CVAULT_ATTRIBUTES_FILE)",
    )


def check_value(info: AttributeInfo, value: object) -> Any:  # noqa: ANN401 - a JSON value
    """The value as stored, if it has the declared type; the error names the attribute and
    its type, never the value."""
    where = f"attributes.{info.name}"
    kind = info.type
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is AttributeType.STRING and isinstance(value, str):
        return check_text(value, field=where, max_length=_MAX_STRING)
    if kind is AttributeType.BOOLEAN and isinstance(value, bool):
        return value
    if kind is AttributeType.INTEGER and number and isinstance(value, int):
        if abs(value) > _MAX_INTEGER:
            raise InvalidInput(where, "must be a 64-bit integer")
        return value
    if kind is AttributeType.DECIMAL and number:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise InvalidInput(where, "must be a finite number")
        return value
    if kind is AttributeType.DATE and isinstance(value, str):
        return _calendar_date(where, value)
    article = "an" if kind is AttributeType.INTEGER else "a"
    raise InvalidInput(where, f"must be {article} {kind.value} (as declared)")


def _calendar_date(where: str, value: str) -> str:
    try:
        if len(value) == 10:  # YYYY-MM-DD, not the other ISO forms
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise InvalidInput(where, "must be a calendar date (YYYY-MM-DD)")


def seal_value(key: DataKey, name: str, value: object) -> str:
    """One PII attribute's value as a field token (base64) bound to ``attr:<name>``."""
    plain = json.dumps(value, ensure_ascii=False)
    token = key.encrypt_text(plain, field=attribute_resource(name))
    return base64.b64encode(token).decode("ascii")


def open_value(key: DataKey, name: str, sealed: str) -> Any:  # noqa: ANN401 - a JSON value
    """The value of a token made by :func:`seal_value`."""
    token = base64.b64decode(sealed.encode("ascii"), validate=True)
    return json.loads(key.decrypt_text(token, field=attribute_resource(name)))


def attribute_reads(registry: AttributeRegistry, reads: Mapping[str, str]) -> dict[str, str]:
    """How each kind of attribute reaches the caller: ``attributes``,
    ``undeclared_attributes`` and ``attr:<name>`` for every declared PII attribute."""
    out = {name: str(reads.get(name, _HIDDEN)) for name in (ATTRIBUTES, UNDECLARED)}
    for resource in registry.pii_resources:
        out[resource] = str(reads.get(resource, _HIDDEN))
    return out


def attributes_view(
    registry: AttributeRegistry,
    clear: Mapping[str, Any] | None,
    sealed: Mapping[str, str] | None,
    key: DataKey | None,
    resolutions: Mapping[str, str],
) -> dict[str, Any]:
    """The attributes a caller may see: clear ones under ``attributes``, PII ones in clear
    or masked under ``attr:<name>`` (never decrypted when hidden), undeclared ones under
    ``undeclared_attributes``; anything else is absent."""

    def how(name: str) -> str:
        info = registry.get(name)
        if info is None:
            return resolutions.get(UNDECLARED, _HIDDEN)
        return resolutions.get(info.resource, _HIDDEN)

    def shown(name: str, value: object) -> object:
        info = registry.get(name)
        if how(name) == _CLEAR or info is None:
            return value
        return mask_attribute(info.type.value, value)

    out: dict[str, Any] = {}
    for name, value in (clear or {}).items():
        if how(name) != _HIDDEN:
            out[name] = shown(name, value)  # a PII value still in clear is shown as PII
    for name, token in (sealed or {}).items():
        if key is not None and how(name) != _HIDDEN:
            out[name] = shown(name, open_value(key, name, token))
    return out


def apply_attributes(row: CustomerRow, key: DataKey, given: CheckedAttributes) -> None:
    """Apply checked attributes to a customer row: clear ones set in ``attributes``, PII
    ones sealed into ``sealed_attributes`` (a clear copy of the name dropped), cleared
    ones removed."""
    if not (given.clear or given.pii or given.cleared):
        return
    clear = {k: v for k, v in (row.attributes or {}).items() if k not in given.cleared}
    sealed = {k: v for k, v in (row.sealed_attributes or {}).items() if k not in given.cleared}
    clear.update(given.clear)
    for name in given.clear:
        sealed.pop(name, None)
    for name, value in given.pii.items():
        sealed[name] = seal_value(key, name, value)
        clear.pop(name, None)
    row.attributes = clear
    row.sealed_attributes = sealed or None
