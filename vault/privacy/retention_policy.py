"""The retention policy: how many days each kind of record is kept, read from TOML.

Where it comes from, first match wins: ``CVAULT_RETENTION_FILE``, else
``$CVAULT_DATA_DIR/retention.toml`` if that file exists, else the built-in
``vault/privacy/retention_default.toml``. A named file that cannot be read is an error,
never a silent fallback to the default.

The file is checked strictly: an unknown section, interaction type or category, a
missing one, a value that is not a whole number of days or is negative raises
:class:`RetentionConfigError` naming the key (and its line when it can be found);
values are never echoed. ``0`` means keep forever; the categories added later
(``inactive_customers``, ``consent_events``) may be left out and then keep forever. A
record is kept while it is younger than its period: kept when ``occurred_at >= now - N
days``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from vault.config import ConfigError, Settings
from vault.types import InteractionType

__all__ = [
    "BUILT_IN",
    "KEEP_FOREVER",
    "MAX_DAYS",
    "RetentionCategory",
    "RetentionConfigError",
    "RetentionPolicy",
    "load_policy",
    "parse_policy",
    "policy_path",
]

KEEP_FOREVER = 0
MAX_DAYS = 36_525  # a hundred years; longer is a typo (and would overflow a datetime)
BUILT_IN = "built-in"
DEFAULT_KEY = "default"
_SECTIONS = ("interactions", "categories")
_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]")
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")
_PRINTABLE = re.compile(r"[^A-Za-z0-9_.:/@+ -]")
_TYPES = frozenset(t.value for t in InteractionType)


class RetentionCategory(StrEnum):
    """Data categories with a retention period of their own."""

    INTERACTION_PAYLOAD = "interaction_payload"  # payload dropped, the interaction row stays
    DSR_REQUESTS = "dsr_requests"  # closed data subject requests and their history
    TOMBSTONES = "tombstones"  # erased customers' tombstones
    INACTIVE_CUSTOMERS = "inactive_customers"  # no interaction for N days: erased
    CONSENT_EVENTS = "consent_events"  # superseded consent events, N days after superseded


_CATEGORIES = frozenset(c.value for c in RetentionCategory)
# Categories added after policy files were in use: a file without them keeps forever.
_OPTIONAL = frozenset({RetentionCategory.INACTIVE_CUSTOMERS, RetentionCategory.CONSENT_EVENTS})


class RetentionConfigError(ConfigError):
    """The retention policy file is unusable; the message names the key and the rule."""

    def __init__(self, source: str, key: str | None, rule: str, line: int | None = None) -> None:
        where = source if line is None else f"{source}:{line}"
        what = rule if key is None else f"retention key '{key}' {rule}"
        super().__init__(f"{where}: {what}")
        self.source = source
        self.key = key
        self.line = line


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days to keep, per interaction type (``default`` for the rest) and per category."""

    default_days: int
    interactions: Mapping[InteractionType, int]  # only the types the file names
    categories: Mapping[RetentionCategory, int]
    source: str = BUILT_IN  # the file it came from, or "built-in"

    def __repr__(self) -> str:
        return f"RetentionPolicy(source={self.source!r})"

    def days_for(self, kind: InteractionType) -> int:
        return self.interactions.get(kind, self.default_days)

    def days_of(self, category: RetentionCategory) -> int:
        return self.categories[category]

    @staticmethod
    def cutoff(now: datetime, days: int) -> datetime | None:
        """Records older than this expire (kept when ``time >= cutoff``); None: forever."""
        if now.tzinfo is None:
            raise ValueError("retention needs a time-zone-aware now")
        return None if days == KEEP_FOREVER else now - timedelta(days=days)


def policy_path(settings: Settings) -> Path | None:
    """The policy file in force for these settings; None for the built-in default."""
    if settings.retention_file is not None:
        return settings.retention_file
    candidate = settings.data_dir / "retention.toml"
    return candidate if candidate.is_file() else None


def load_policy(path: Path | None) -> RetentionPolicy:
    """Read and check a policy file (None: the built-in default)."""
    if path is None:
        text = (
            resources.files("vault.privacy").joinpath("retention_default.toml").read_text("utf-8")
        )
        return parse_policy(text, source=BUILT_IN)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RetentionConfigError(str(path), None, "is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or "cannot be read"
        raise RetentionConfigError(str(path), None, f"cannot be read ({reason})") from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str) -> RetentionPolicy:
    """Check a policy's TOML text strictly; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the position ("... (at line 3, column 12)"), not the value.
        raise RetentionConfigError(source, None, f"is not valid TOML: {exc}") from None
    check = _Checker(text, source)
    for key in data:
        if key not in _SECTIONS:
            check.fail(key, "is not a section (expected [interactions] and [categories])")
    interactions = check.section(data, "interactions")
    categories = check.section(data, "categories")
    types: dict[InteractionType, int] = {}
    for key, value in interactions.items():
        if key != DEFAULT_KEY and key not in _TYPES:
            check.fail(f"interactions.{key}", "is not an interaction type (see vault/types.py)")
        days = check.days(f"interactions.{key}", value)
        if key != DEFAULT_KEY:
            types[InteractionType(key)] = days
    if DEFAULT_KEY not in interactions:
        check.fail("interactions.default", "is missing (days for every other type)")
    kept: dict[RetentionCategory, int] = {}
    for key, value in categories.items():
        if key not in _CATEGORIES:
            allowed = ", ".join(c.value for c in RetentionCategory)
            check.fail(f"categories.{key}", f"is not a data category (one of: {allowed})")
        kept[RetentionCategory(key)] = check.days(f"categories.{key}", value)
    for category in RetentionCategory:
        if category in _OPTIONAL:
            kept.setdefault(category, KEEP_FOREVER)
        elif category not in kept:
            check.fail(f"categories.{category.value}", "is missing")
    return RetentionPolicy(
        default_days=check.days("interactions.default", interactions[DEFAULT_KEY]),
        interactions=MappingProxyType(types),
        categories=MappingProxyType(kept),
        source=source,
    )


class _Checker:
    """Raises errors that name a key and, when the text shows it, the key's line."""

    def __init__(self, text: str, source: str) -> None:
        self._lines = text.splitlines()
        self._source = source

    def fail(self, key: str, rule: str) -> NoReturn:
        safe = _PRINTABLE.sub("?", key)[:100]
        raise RetentionConfigError(self._source, safe, rule, self._line_of(key))

    def section(self, data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        if name not in data:
            self.fail(name, f"is missing (a [{name}] table)")
        table = data[name]
        if not isinstance(table, dict):
            self.fail(name, "must be a table")
        return table

    def days(self, key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number of days (0 keeps forever, at most {MAX_DAYS})")
        if not KEEP_FOREVER <= value <= MAX_DAYS:
            self.fail(key, f"must be between 0 (keep forever) and {MAX_DAYS} days")
        return value

    def _line_of(self, dotted: str) -> int | None:
        """Best effort: the line assigning ``section.key`` (or opening ``[section]``)."""
        section, _, key = dotted.partition(".")
        current: str | None = None
        header: int | None = None
        for number, raw in enumerate(self._lines, start=1):
            if found := _HEADER.match(raw):
                current = _bare(found.group(1))
                if current == section and header is None:
                    header = number
                continue
            if (found := _ASSIGNMENT.match(raw)) is None:
                continue
            name = _bare(found.group(1))
            if (current == section and name == key) or (current is None and name == dotted):
                return number
            if current is None and not key and name.partition(".")[0] == section:
                return number
        return header


def _bare(name: str) -> str:
    """``"a" . b`` -> ``a.b``: a TOML key written with quotes or spaces, as plain text."""
    return ".".join(part.strip().strip("\"'") for part in name.split("."))
