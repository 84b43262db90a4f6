"""Custom attributes are declared: a name, a type, whether it is personal data (PII).

A customer's custom attributes are only those declared in an attribute file
(``policies/attributes.toml`` is shipped; an operator names another with
``CVAULT_ATTRIBUTES_FILE``, see :mod:`vault.attributes`). The declaration decides how a
value is stored and shown:

* ``pii = true``: the value is encrypted under the customer's data key (bound to the
  customer and the field name ``attr:<name>``) and resolved clear, masked or hidden per
  role and purpose like the six PII fields: its policy resource is ``attr:<name>``
  (``attr:*`` in a policy line grants every PII attribute). Segment rules cannot use it.
* ``pii = false``: the value stays in clear at rest (segment rules compare it) and is
  shown to the callers the policy grants the resource ``attributes``.

The file is checked strictly: one ``[[attribute]]`` table per attribute with exactly the
keys ``name``, ``type`` (string, integer, decimal, boolean, date), ``pii`` (true or
false) and ``description``; an unknown key, a duplicate name or a bad type is refused
with the line it is on (:class:`AttributeFileError`). Like the other policy words, this
module imports nothing of the rest of the vault.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Final, NoReturn

__all__ = [
    "ATTRIBUTE_PREFIX",
    "BUILT_IN",
    "AttributeFileError",
    "AttributeInfo",
    "AttributeRegistry",
    "AttributeType",
    "attribute_resource",
    "default_attributes",
    "parse_attributes",
]

# The policy resource (and the encryption field name) of a PII attribute: ``attr:<name>``.
ATTRIBUTE_PREFIX: Final = "attr:"
BUILT_IN: Final = "built-in"
DEFAULT_FILE: Final = "attributes.toml"
_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_KEYS: Final = ("name", "type", "pii", "description")
_HEADER: Final = re.compile(r"^\s*\[\[\s*attribute\s*\]\]\s*(#.*)?$")
_ASSIGNMENT: Final = re.compile(r"^\s*\"?([A-Za-z0-9_-]+)\"?\s*=")
_SAFE: Final = re.compile(r"[^A-Za-z0-9_.:-]")
_MAX_DESCRIPTION: Final = 500


class AttributeType(StrEnum):
    """The type of a custom attribute's value (JSON: string, number, boolean; a date is an
    ISO ``YYYY-MM-DD`` string)."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class AttributeInfo:
    """One declared attribute."""

    name: str
    type: AttributeType
    pii: bool
    description: str

    @property
    def resource(self) -> str:
        """Its policy resource when it is PII (``attr:<name>``), else ``attributes``."""
        return attribute_resource(self.name) if self.pii else "attributes"


def attribute_resource(name: str) -> str:
    """The policy resource and encryption field name of a PII attribute."""
    return f"{ATTRIBUTE_PREFIX}{name}"


class AttributeFileError(ValueError):
    """The attribute file is unusable; the message names the file, the line and the rule
    (never a value of the file beyond a name)."""

    def __init__(self, source: str, line: int | None, rule: str) -> None:
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {rule}")
        self.source = source
        self.line = line
        self.rule = rule


class AttributeRegistry(Mapping[str, AttributeInfo]):
    """The declared attributes by name, and where they were declared."""

    def __init__(self, attributes: Mapping[str, AttributeInfo], source: str = BUILT_IN) -> None:
        self._by_name = dict(attributes)
        self.source = source

    def __repr__(self) -> str:
        return f"AttributeRegistry(<{len(self._by_name)} attributes>, source={self.source!r})"

    def __getitem__(self, name: str) -> AttributeInfo:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def pii_names(self) -> tuple[str, ...]:
        return tuple(n for n, info in self._by_name.items() if info.pii)

    @property
    def pii_resources(self) -> tuple[str, ...]:
        """The policy resources of the PII attributes, ``attr:<name>`` each."""
        return tuple(attribute_resource(n) for n in self.pii_names)


def parse_attributes(text: str, *, source: str = BUILT_IN) -> AttributeRegistry:
    """Check an attribute file's TOML text strictly; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the position ("... (at line 3, column 12)"), not a value.
        raise AttributeFileError(source, None, f"is not valid TOML: {exc}") from None
    check = _Checker(text, source)
    for key in data:
        if key != "attribute":
            where = check.top_line(key)
            check.fail(where, f"unknown top-level key {_safe(key)!r}; declare [[attribute]] tables")
    entries = data.get("attribute", [])
    if not isinstance(entries, list):
        check.fail(None, "'attribute' must be an array of [[attribute]] tables")
    found: dict[str, AttributeInfo] = {}
    for index, entry in enumerate(entries):
        info = _entry(check, index, entry)
        if info.name in found:
            check.fail(check.key_line(index, "name"), f"attribute {info.name!r} is declared twice")
        found[info.name] = info
    return AttributeRegistry(found, source)


def _entry(check: _Checker, index: int, entry: object) -> AttributeInfo:
    """One ``[[attribute]]`` table, checked."""
    if not isinstance(entry, dict):
        check.fail(check.entry_line(index), "each attribute must be an [[attribute]] table")
    unknown = sorted(set(entry) - set(_KEYS))
    if unknown:
        key = unknown[0]
        allowed = ", ".join(_KEYS)
        check.fail(check.key_line(index, key), f"unknown key {_safe(key)!r} (allowed: {allowed})")
    for key in _KEYS:
        if key not in entry:
            check.fail(check.entry_line(index), f"the attribute lacks {key!r}")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        check.fail(
            check.key_line(index, "name"),
            "name must be 1-64 lower-case letters, digits or underscores, starting with a letter",
        )
    kind = entry["type"]
    typed = None
    if isinstance(kind, str) and kind in AttributeType.__members__.values():
        typed = AttributeType(kind)
    if typed is None:
        allowed = ", ".join(t.value for t in AttributeType)
        check.fail(
            check.key_line(index, "type"), f"attribute {name!r}: type must be one of: {allowed}"
        )
    pii = entry["pii"]
    if not isinstance(pii, bool):
        check.fail(check.key_line(index, "pii"), f"attribute {name!r}: pii must be true or false")
    description = entry["description"]
    if (
        not isinstance(description, str)
        or not description.strip()
        or len(description) > _MAX_DESCRIPTION
    ):
        check.fail(
            check.key_line(index, "description"),
            f"attribute {name!r}: description must be a non-empty string of at most "
            f"{_MAX_DESCRIPTION} characters",
        )
    return AttributeInfo(name, typed, pii, description.strip())


def default_attributes() -> AttributeRegistry:
    """The attributes shipped in ``policies/attributes.toml``."""
    text = resources.files("policies").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")
    return parse_attributes(text, source=BUILT_IN)


def _safe(text: str) -> str:
    return _SAFE.sub("?", text)[:64]


class _Checker:
    """Raises errors naming the line of the n-th ``[[attribute]]`` table or of its key."""

    def __init__(self, text: str, source: str) -> None:
        self._lines = text.splitlines()
        self._source = source
        self._headers = [n for n, raw in enumerate(self._lines, start=1) if _HEADER.match(raw)]

    def fail(self, line: int | None, rule: str) -> NoReturn:
        raise AttributeFileError(self._source, line, rule)

    def top_line(self, key: str) -> int | None:
        """The first line assigning ``key``, or opening a ``[key...]`` table."""
        for number, raw in enumerate(self._lines, start=1):
            found = _ASSIGNMENT.match(raw)
            if (found and found.group(1) == key) or raw.lstrip().startswith(f"[{key}"):
                return number
        return None

    def entry_line(self, index: int) -> int | None:
        return self._headers[index] if index < len(self._headers) else None

    def key_line(self, index: int, key: str) -> int | None:
        start = self.entry_line(index)
        if start is None:
            return None
        end = self._headers[index + 1] if index + 1 < len(self._headers) else None
        for number in range(start + 1, (end or len(self._lines) + 1)):
            found = _ASSIGNMENT.match(self._lines[number - 1])
            if found and found.group(1) == key:
                return number
        return start
