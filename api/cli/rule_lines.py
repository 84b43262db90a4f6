"""Where each node of a JSON rule document starts: so that ``cvault segments create`` can
put a line number on the rule path a refusal names (``rule.all[2].behaviour.window``).

:func:`load_with_lines` parses the text like :func:`json.loads` and also returns the line
of every node, keyed by the path :mod:`vault.segments.parse` uses; :func:`line_of` finds
the line of a path, or of its nearest ancestor (a missing key is reported on the line of
the object that lacks it). A syntax error raises :class:`RuleSyntaxError` with its line.
Pure text handling: no vault import.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["RuleSyntaxError", "line_of", "load_with_lines"]

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_STEP = re.compile(r"(\.[^.\[]+|\[\d+\])$")


class RuleSyntaxError(ValueError):
    """The text is not JSON; ``line`` is where the parser stopped."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def load_with_lines(text: str, root: str = "rule") -> tuple[Any, dict[str, int]]:
    """The parsed document and the line (1-based) each node starts on, by path."""
    lines: dict[str, int] = {}
    try:
        value, end = _Scanner(text, lines).value(_skip(text, 0), root)
    except json.JSONDecodeError as exc:
        raise RuleSyntaxError(exc.lineno, exc.msg) from None
    end = _skip(text, end)
    if end != len(text):
        raise RuleSyntaxError(_line(text, end), "extra data after the document")
    return value, lines


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of ``path``, else of its nearest ancestor; None when none is known."""
    while path:
        if path in lines:
            return lines[path]
        stripped = _STEP.sub("", path)
        if stripped == path:
            return None
        path = stripped
    return None


def _skip(text: str, at: int) -> int:
    found = _SPACE.match(text, at)
    return at if found is None else found.end()


def _line(text: str, at: int) -> int:
    return text.count("\n", 0, at) + 1


class _Scanner:
    def __init__(self, text: str, lines: dict[str, int]) -> None:
        self.text = text
        self.lines = lines

    def value(self, at: int, path: str) -> tuple[Any, int]:
        self.lines[path] = _line(self.text, at)
        char = self.text[at : at + 1]
        if char == "{":
            return self._object(at + 1, path)
        if char == "[":
            return self._array(at + 1, path)
        return _DECODER.raw_decode(self.text, at)

    def _object(self, at: int, path: str) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        at = _skip(self.text, at)
        if self.text[at : at + 1] == "}":
            return out, at + 1
        while True:
            if self.text[at : at + 1] != '"':
                raise json.JSONDecodeError("Expecting property name", self.text, at)
            key, at = _DECODER.raw_decode(self.text, at)
            at = _skip(self.text, at)
            if self.text[at : at + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", self.text, at)
            out[key], at = self.value(_skip(self.text, at + 1), f"{path}.{key}")
            at = _skip(self.text, at)
            char = self.text[at : at + 1]
            if char == "}":
                return out, at + 1
            if char != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", self.text, at)
            at = _skip(self.text, at + 1)

    def _array(self, at: int, path: str) -> tuple[list[Any], int]:
        out: list[Any] = []
        at = _skip(self.text, at)
        if self.text[at : at + 1] == "]":
            return out, at + 1
        while True:
            item, at = self.value(at, f"{path}[{len(out)}]")
            out.append(item)
            at = _skip(self.text, at)
            char = self.text[at : at + 1]
            if char == "]":
                return out, at + 1
            if char != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", self.text, at)
            at = _skip(self.text, at + 1)
