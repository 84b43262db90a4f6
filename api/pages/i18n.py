"""Languages of the pages: the message catalogs, the choice of language, and Babel formats.

Catalogs are the ``.po`` files under ``api/pages/locale/<lang>/LC_MESSAGES/messages.po``
(``en``, ``fa``, ``th``, ``zh_Hans``). They are compiled in memory when the pages are
built (``babel.messages.mofile.write_mo`` into a buffer, read back as
:class:`babel.support.Translations`), so no ``.mo`` file is kept in the repository and
``make run`` needs no compile step; a catalog that cannot be read stops start-up.

The language of a request: the ``cvault_lang`` cookie set by the switcher, else the best
match of ``Accept-Language``, else English. Persian is written right to left.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_COOKIE",
    "LOCALE_DIR",
    "Language",
    "catalog_path",
    "choose_language",
    "language",
    "translations",
]

LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
LANGUAGE_COOKIE: Final = "cvault_lang"
DEFAULT_LANGUAGE: Final = "en"


@dataclass(frozen=True, slots=True)
class Language:
    """One language the pages speak: its catalog code, its ``lang`` attribute, its name
    in itself (for the switcher) and its direction."""

    code: str
    tag: str
    name: str
    rtl: bool

    @property
    def direction(self) -> str:
        return "rtl" if self.rtl else "ltr"

    def datetime(self, value: dt.datetime) -> str:
        """A date and time in this language's medium format (UTC, as stored)."""
        return format_datetime(value, "medium", locale=self.code)

    def date(self, value: dt.datetime | dt.date) -> str:
        return format_date(value, "long", locale=self.code)

    def number(self, value: int | Decimal | float) -> str:
        return format_decimal(value, locale=self.code, numbering_system="default")


def _language(code: str) -> Language:
    locale = Locale.parse(code)
    return Language(
        code=code,
        tag=code.replace("_", "-"),
        name=locale.get_display_name(locale) or code,
        rtl=locale.text_direction == "rtl",
    )


LANGUAGES: Final[Mapping[str, Language]] = {
    code: _language(code) for code in (DEFAULT_LANGUAGE, "fa", "th", "zh_Hans")
}
# Accept-Language primary tags (and Chinese scripts or regions) onto our catalogs.
_SIMPLIFIED = {"zh", "zh-hans", "zh-cn", "zh-sg", "zh-my"}
_RANGE = re.compile(
    r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]{1,5}))?\s*$"
)
_MAX_HEADER = 512


def language(code: str | None) -> Language | None:
    """The language of a catalog code (``fa``, ``zh_Hans``), or None for anything else."""
    return LANGUAGES.get(code) if code else None


def _catalog_of(tag: str) -> str | None:
    lowered = tag.lower()
    primary = lowered.split("-", 1)[0]
    if primary == "zh":
        simplified = lowered in _SIMPLIFIED or lowered.startswith("zh-hans")
        return "zh_Hans" if simplified else None
    return primary if primary in LANGUAGES else None


def choose_language(cookie: str | None, accept_language: str | None) -> Language:
    """The switcher's choice if it names a language of ours, else the best ``Accept-Language``
    range we have (by weight, then by order), else English."""
    chosen = language(cookie)
    if chosen is not None:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "")[:_MAX_HEADER].split(",")):
        found = _RANGE.match(part)
        if found is None or found.group(1) == "*":
            continue
        try:
            weight = float(found.group(2)) if found.group(2) else 1.0
        except ValueError:
            continue
        code = _catalog_of(found.group(1))
        if code is not None and weight > 0:
            ranked.append((-weight, position, code))
    return LANGUAGES[min(ranked)[2]] if ranked else LANGUAGES[DEFAULT_LANGUAGE]


def catalog_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"


@cache
def translations(code: str) -> Translations:
    """The compiled catalog of one language (compiled once per process, in memory)."""
    if code not in LANGUAGES:
        raise KeyError(f"no catalog for language {code!r}")
    with catalog_path(code).open("rb") as source:
        catalog = read_po(source, locale=code)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain="messages")
