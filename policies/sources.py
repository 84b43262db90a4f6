"""Where policy lines come from: the shipped model and default policy, a list of lines, a
CSV file. Any Casbin adapter works; these two refuse a line of a type the model does not
know (Casbin itself would skip it without a word). Also :class:`PolicyError`, which every
refusal of a policy raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

from casbin.persist import Adapter, load_policy_line

__all__ = [
    "DEFAULT_POLICY_FILE",
    "MODEL_FILE",
    "PolicyError",
    "PolicyFile",
    "PolicyLines",
    "default_model_text",
    "default_policy_lines",
    "short_name",
]

_PACKAGE: Final = "policies"
MODEL_FILE: Final = "model.conf"
DEFAULT_POLICY_FILE: Final = "default_policy.csv"
_NAME_LIMIT: Final = 64  # names echoed in messages are cut here


class PolicyError(Exception):
    """The policy cannot be loaded, or (in subclasses) an access was refused."""

    code = "POLICY_ERROR"


def short_name(value: str) -> str:
    """A name as echoed in a message: cut after 64 characters."""
    text = str(value)
    return text if len(text) <= _NAME_LIMIT else text[:_NAME_LIMIT] + "..."


_name = short_name


def _data(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def default_model_text() -> str:
    """The text of the Casbin model shipped in ``policies/model.conf``."""
    return _data(MODEL_FILE)


def default_policy_lines() -> list[str]:
    """The lines of ``policies/default_policy.csv`` (comments and blank lines included)."""
    return _data(DEFAULT_POLICY_FILE).splitlines()


def _as_line(line: str | Sequence[str]) -> str:
    if isinstance(line, str):
        text = line.strip()
        if "\n" in text or "\r" in text:
            raise PolicyError("a policy line must not span several lines")
        return text
    parts = [str(part).strip() for part in line]
    if any(("," in part or "\n" in part or "\r" in part) for part in parts):
        raise PolicyError("a policy line field must not contain a comma or a line break")
    return ", ".join(parts)


class PolicyLines(Adapter):  # type: ignore[misc]  # casbin ships no type information
    """An in-memory policy source: lines as Casbin's CSV file adapter reads them.

    A line is a string (``"p, admin, email, read:masked, administration, allow"``)
    or a sequence of its fields (``("p", "admin", ...)``). Blank lines and lines
    starting with ``#`` are skipped. :meth:`replace` swaps the lines; the
    enforcer sees them on its next :meth:`PolicyEnforcer.reload`.
    """

    def __init__(self, lines: Iterable[str | Sequence[str]]) -> None:
        self._lines = tuple(_as_line(line) for line in lines)

    def __repr__(self) -> str:
        return f"PolicyLines(<{len(self._lines)} lines>)"

    @property
    def lines(self) -> tuple[str, ...]:
        return self._lines

    def replace(self, lines: Iterable[str | Sequence[str]]) -> None:
        self._lines = tuple(_as_line(line) for line in lines)

    def load_policy(self, model: Any) -> None:  # noqa: ANN401 - a casbin Model
        _load_lines(self._lines, model)


class PolicyFile(Adapter):  # type: ignore[misc]  # casbin ships no type information
    """Policy lines in a CSV file (the format of ``default_policy.csv``), read on every load."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __repr__(self) -> str:
        return f"PolicyFile({str(self._path)!r})"

    @property
    def lines(self) -> tuple[str, ...]:
        """The file's lines as they stand now (to name a refused line by its number)."""
        try:
            return tuple(self._path.read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError):
            return ()

    def load_policy(self, model: Any) -> None:  # noqa: ANN401 - a casbin Model
        try:
            text = self._path.read_text(encoding="utf-8")
        except OSError:
            raise PolicyError(f"policy file {self._path} cannot be read") from None
        _load_lines([_as_line(line) for line in text.splitlines()], model)


def _load_lines(lines: Iterable[str], model: Any) -> None:  # noqa: ANN401 - a casbin Model
    """Hand lines to Casbin, refusing a line of a type the model does not know.

    Casbin itself skips such a line without a word: a mistyped deny line
    would silently grant more than it should.
    """
    known = {ptype for section in ("p", "g") for ptype in model.model.get(section, {})}
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        ptype = line.split(",", 1)[0].strip()
        if ptype not in known:
            raise PolicyError(f"policy line {number}: unknown line type {_name(ptype)!r}")
        load_policy_line(line, model)
