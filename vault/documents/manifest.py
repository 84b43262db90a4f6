"""Persisted-document manifests: the three shapes clients' build tools write, read into
one list of entries whose ids are checked against their documents.

* Relay's compiler (persisted queries) and GraphQL Code Generator's client preset
  (``persisted-documents.json``): a JSON object mapping an id to a document. The id is
  ``sha256:<64 hex>`` or bare hex: 64 digits are a SHA-256, 40 a SHA-1 (the client
  preset's older default), 32 an MD5 (Relay's default).
* Apollo's persisted query manifest: ``{"format": "apollo-persisted-query-manifest",
  "version": 1, "operations": [{"id", "body", "name", "type"}]}``, whose ids are the
  SHA-256 of the body.

Every id must be the hash of its document's UTF-8 text as given (no normalisation):
otherwise the whole manifest is refused, naming the entry. The vault keys documents by
its own SHA-256; an MD5 or SHA-1 id is kept beside it as the id clients send. Nothing
here echoes a document's text: a literal in it may be anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vault.errors import VaultError

__all__ = [
    "APOLLO_FORMAT",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "document_sha256",
    "id_matches",
    "parse_document_id",
    "parse_manifest",
]

APOLLO_FORMAT = "apollo-persisted-query-manifest"
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_HASHES: dict[int, tuple[str, Callable[[bytes], str]]] = {
    64: ("sha256", lambda b: hashlib.sha256(b).hexdigest()),
    40: ("sha1", lambda b: hashlib.sha1(b, usedforsecurity=False).hexdigest()),
    32: ("md5", lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest()),
}
_OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})


class ManifestError(VaultError):
    """A manifest is refused whole: each problem names its entry (never a document's
    text)."""

    code = "BAD_MANIFEST"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"manifest refused, nothing stored: {text}")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One document of a manifest. ``label`` names the entry in messages (its id as the
    manifest spells it, and the operation name for Apollo's); ``alias`` is the MD5 or
    SHA-1 id clients send for it (None when their id is the SHA-256)."""

    label: str
    sha256: str
    body: str = field(repr=False)
    alias: str | None = None
    name: str | None = None
    kind: str | None = None  # the operation type Apollo's manifest states


@dataclass(frozen=True, slots=True)
class Manifest:
    """The entries of a manifest, in file order; ``format`` is ``apollo`` or ``map``
    (Relay's and the client preset's JSON object of id to document)."""

    format: str
    entries: tuple[ManifestEntry, ...]

    @property
    def digest(self) -> str:
        """The SHA-256 of the sorted document hashes: names this set of documents."""
        ids = "\n".join(sorted({e.sha256 for e in self.entries}))
        return hashlib.sha256(ids.encode()).hexdigest()


def document_sha256(text: str) -> str:
    """The lower-case hex SHA-256 of a document's UTF-8 text: its id in the vault."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_document_id(given: str) -> tuple[str, str] | None:
    """``("sha256", hex)`` for ``sha256:<64 hex>`` or 64 bare hex digits, ``("alias",
    hex)`` for 32 or 40 (an MD5 or SHA-1 a manifest gave), None for anything else."""
    prefixed = given.startswith("sha256:")
    digits = given[7:] if prefixed else given
    if not _HEX.match(digits) or len(digits) not in _HASHES:
        return None
    if len(digits) == 64:
        return "sha256", digits.lower()
    return None if prefixed else ("alias", digits.lower())


def id_matches(text: str, kind: str, digits: str) -> bool:
    """Whether a parsed document id (:func:`parse_document_id`) is the hash of ``text``."""
    if kind == "sha256":
        return document_sha256(text) == digits
    return _HASHES[len(digits)][1](text.encode("utf-8")) == digits


def parse_manifest(raw: bytes) -> Manifest:
    """Read a manifest of any of the three shapes; every id checked against its text."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ManifestError(["the file is not UTF-8 text"]) from None
    except ValueError as exc:
        raise ManifestError([f"the file is not JSON (line {_line_of(exc)})"]) from None
    if isinstance(data, dict) and "format" in data:
        entries, problems = _apollo(data)
        kind = "apollo"
    elif isinstance(data, dict):
        entries, problems = _map(data)
        kind = "map"
    else:
        raise ManifestError(
            ["expected a JSON object: id -> document, or Apollo's persisted query manifest"]
        )
    if not entries and not problems:
        problems.append("the manifest holds no document")
    if problems:
        raise ManifestError(problems)
    return Manifest(kind, tuple(entries))


def _line_of(exc: ValueError) -> int:
    return int(getattr(exc, "lineno", 0))


def _shown(value: object) -> str:
    """An id as a message may show it: at most 80 characters, control characters out."""
    text = value if isinstance(value, str) else json.dumps(value)[:80]
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _entry(
    label: str, given: object, body: object, name: str | None = None, kind: str | None = None
) -> ManifestEntry | str:
    """The checked entry, or the problem with it (a string naming the entry)."""
    if not isinstance(given, str):
        return f"entry {label}: the id must be a string"
    if not isinstance(body, str) or not body.strip():
        return f"entry {label}: the document must be a non-empty string"
    prefixed = given.startswith("sha256:")
    digits = given[7:] if prefixed else given
    if not _HEX.match(digits) or len(digits) not in _HASHES or (prefixed and len(digits) != 64):
        return (
            f"entry {label}: the id is neither sha256:<64 hex digits> nor the hex digits of "
            "an MD5, SHA-1 or SHA-256"
        )
    algorithm, digest = _HASHES[len(digits)]
    if digest(body.encode("utf-8")) != digits.lower():
        return f"entry {label}: the id is not the {algorithm} of its document's text"
    sha256 = document_sha256(body)
    alias = None if algorithm == "sha256" else digits.lower()
    return ManifestEntry(label, sha256, body, alias=alias, name=name, kind=kind)


def _map(data: dict[str, Any]) -> tuple[list[ManifestEntry], list[str]]:
    entries: list[ManifestEntry] = []
    problems: list[str] = []
    for given, body in data.items():
        checked = _entry(_shown(given), given, body)
        if isinstance(checked, str):
            problems.append(checked)
        else:
            entries.append(checked)
    return entries, problems


def _apollo(data: dict[str, Any]) -> tuple[list[ManifestEntry], list[str]]:
    if data.get("format") != APOLLO_FORMAT:
        return [], [f"unknown manifest format {_shown(data.get('format'))}; "
                    f"expected {APOLLO_FORMAT!r}"]  # fmt: skip
    if data.get("version") != 1:
        return [], [f"unsupported {APOLLO_FORMAT} version {_shown(data.get('version'))}"]
    operations = data.get("operations")
    if not isinstance(operations, list):
        return [], ["'operations' must be a list"]
    entries: list[ManifestEntry] = []
    problems: list[str] = []
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            problems.append(f"operation {index}: must be an object with id, body, name, type")
            continue
        name = operation.get("name")
        label = f"operation {index} {_shown(operation.get('id'))}"
        if isinstance(name, str) and name:
            label += f" ({_shown(name)[1:-1]})"
        kind = operation.get("type")
        if kind is not None and kind not in _OPERATION_TYPES:
            problems.append(f"{label}: type must be query, mutation or subscription")
            continue
        checked = _entry(
            label, operation.get("id"), operation.get("body"),
            name if isinstance(name, str) and name else None, kind,
        )  # fmt: skip
        if isinstance(checked, str):
            problems.append(checked.replace(f"entry {label}", label, 1))
        else:
            entries.append(checked)
    return entries, problems
