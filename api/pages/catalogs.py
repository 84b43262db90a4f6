"""The pages' message catalogs: what needs translating, and keeping the four ``.po`` files
in step with it.

The messages are everything marked in ``api/pages`` (``_("...")`` and ``gettext`` in
Python, ``{{ _("...") }}`` and ``{% trans %}`` in the templates) plus the purpose
descriptions of ``policies/purposes.toml``, which the consents page shows.

    python -m api.pages.catalogs update   # add new messages to every catalog (to translate)
    python -m api.pages.catalogs check    # list what is untranslated; exit 1 if anything is

English is the source language: its catalog repeats every message as its translation,
so "untranslated" means the same in all four. The test suite runs ``check``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from api.pages.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalog_path
from policies.purposes import registry

__all__ = ["extract", "main", "untranslated", "update"]

PAGES: Final = Path(__file__).resolve().parent
_METHODS: Final = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
_OPTIONS: Final = {"**/templates/**.html": {"trimmed": "true"}}


def _messages() -> Iterator[tuple[str, str]]:
    """(message, where) for every message of the pages."""
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(PAGES), _METHODS, _OPTIONS
    ):
        if isinstance(message, tuple):  # ngettext: singular and plural
            for part in message:
                if part:
                    yield part, f"{filename}:{lineno}"
        elif message:
            yield message, f"{filename}:{lineno}"
    for purpose, info in registry().items():
        yield info.description, f"policies/purposes.toml:{purpose.value}"


def extract() -> Catalog:
    """The template catalog: every message and where it is used."""
    catalog = Catalog(project="customer-vault pages", fuzzy=False)
    for message, where in _messages():
        path, _, line = where.rpartition(":")
        catalog.add(message, locations=[(path, int(line) if line.isdigit() else 0)])
    return catalog


def _read(code: str) -> Catalog:
    path = catalog_path(code)
    if not path.exists():
        return Catalog(locale=code, project="customer-vault pages", fuzzy=False)
    with path.open("rb") as source:
        return read_po(source, locale=code)


def untranslated() -> dict[str, list[str]]:
    """Per language, the messages of the pages its catalog lacks or leaves empty."""
    wanted = sorted({message for message, _where in _messages()})
    out: dict[str, list[str]] = {}
    for code in LANGUAGES:
        catalog = _read(code)
        missing = []
        for message in wanted:
            found = catalog.get(message)
            if found is None or not found.string or found.fuzzy:
                missing.append(message)
        out[code] = missing
    return out


def update() -> None:
    """Bring every catalog in step with the messages: new ones added (English filled in,
    the others empty, to translate), gone ones dropped, translations kept."""
    for code in LANGUAGES:
        catalog = _read(code)
        catalog.update(extract(), no_fuzzy_matching=True)  # fresh: update() shares messages
        catalog.obsolete.clear()
        if code == DEFAULT_LANGUAGE:
            for message in catalog:
                if message.id and not message.string:
                    message.string = message.id
        path = catalog_path(code)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            write_po(out, catalog, width=100, sort_output=True, include_previous=False)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "update":
        update()
        return 0
    if command == "check":
        missing = untranslated()
        for code, messages in missing.items():
            for message in messages:
                print(f"{code}: untranslated: {message!r}")
        return 1 if any(missing.values()) else 0
    print("usage: python -m api.pages.catalogs update|check")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
