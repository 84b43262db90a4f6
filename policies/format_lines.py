"""The policy's ``p3`` lines: which mask format a masked field shows to a role for a purpose.

``p3, ROLE, FIELD, PURPOSE, FORMAT``. Role and purpose may be keyMatch patterns (``*``,
``market*``) like on ``p`` lines; the field is one customer field named exactly, and the
format one of :class:`~policies.mask_formats.MaskFormat` that the field takes. A line
only picks the format: whether the field is masked at all is decided by the ``p`` lines.
Two lines that could name different formats for the same role, field and purpose are
refused, whatever their order: the policy says one thing or is not loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from policies.mask_formats import FORMATS, MaskFormat
from policies.sources import PolicyError, short_name

__all__ = ["FORMAT_LINE", "FormatLine", "format_for", "parse_format_lines"]

FORMAT_LINE: Final = "p3"
_FORMATS: Final = frozenset(f.value for f in MaskFormat)


@dataclass(frozen=True, slots=True)
class FormatLine:
    """One ``p3`` line: ``role`` and ``purpose`` may end in ``*``."""

    role: str
    resource: str
    purpose: str
    fmt: MaskFormat

    @property
    def rule(self) -> tuple[str, ...]:
        """The line as :class:`~policies.Explanation` shows lines, its type in front."""
        return (FORMAT_LINE, self.role, self.resource, self.purpose, self.fmt.value)

    def matches(self, role: str, resource: str, purpose: str) -> bool:
        return (
            resource == self.resource
            and _key_match(role, self.role)
            and _key_match(purpose, self.purpose)
        )


def _key_match(key: str, pattern: str) -> bool:
    """Casbin's keyMatch for the patterns a policy may hold: a prefix and one final ``*``."""
    return key.startswith(pattern[:-1]) if pattern.endswith("*") else key == pattern


def _listed(names: Iterable[str]) -> str:
    return ", ".join(names)


def parse_format_lines(
    rules: Sequence[Sequence[str]],
    *,
    where: Callable[[int, Sequence[str]], str],
    check_role: Callable[[str, str], None],
    check_purpose: Callable[[str, str], None],
    roles: Iterable[str],
    purposes: Iterable[str],
) -> tuple[FormatLine, ...]:
    """Validate the ``p3`` lines (as Casbin holds them, without their type) and return them.

    ``where(number, rule)`` names a line in a message; ``check_role`` and ``check_purpose``
    refuse an unknown name (a pattern passes). Raises :class:`PolicyError` naming the line:
    wrong number of fields, a field without formats, an unknown format, a format the field
    does not take, or two lines that give one role, field and purpose different formats.
    """
    lines: list[tuple[str, FormatLine]] = []
    for number, rule in enumerate(rules, start=1):
        at = where(number, rule)
        if len(rule) != 4:
            raise PolicyError(f"{at}: has {len(rule)} fields; p3 lines need 4")
        role, resource, purpose, fmt = (str(part) for part in rule)
        check_role(at, role)
        allowed = FORMATS.get(resource)
        if allowed is None:
            raise PolicyError(
                f"{at}: resource {short_name(resource)!r} has no mask formats; "
                f"p3 lines name one of {_listed(FORMATS)}"
            )
        check_purpose(at, purpose)
        if fmt not in _FORMATS:
            raise PolicyError(
                f"{at}: unknown mask format {short_name(fmt)!r}; "
                f"{resource} takes {_listed(allowed)}"
            )
        if fmt not in allowed:
            raise PolicyError(
                f"{at}: mask format {fmt!r} is not for {resource}; "
                f"{resource} takes {_listed(allowed)}"
            )
        lines.append((at, FormatLine(role, resource, purpose, MaskFormat(fmt))))
    _refuse_conflicts(lines, tuple(roles), tuple(purposes))
    return tuple(line for _, line in lines)


def _refuse_conflicts(
    lines: Sequence[tuple[str, FormatLine]], roles: Sequence[str], purposes: Sequence[str]
) -> None:
    """Two lines with different formats that both match some known role and purpose (or
    the same patterns) for one field: refused, naming both."""
    for i, (at, line) in enumerate(lines):
        for other_at, other in lines[i + 1 :]:
            if other.resource != line.resource or other.fmt == line.fmt:
                continue
            same = (other.role, other.purpose) == (line.role, line.purpose)
            if same or any(
                line.matches(role, line.resource, purpose)
                and other.matches(role, line.resource, purpose)
                for role in roles
                for purpose in purposes
            ):
                raise PolicyError(
                    f"{other_at}: gives {line.resource} mask format {other.fmt.value!r} "
                    f"where {at} gives {line.fmt.value!r}; one format per role, field "
                    "and purpose"
                )


def format_for(
    lines: Iterable[FormatLine], role: str, resource: str, purpose: str
) -> FormatLine | None:
    """The line that names the format of ``resource`` for this role and purpose, if any
    (all matching lines agree: conflicts are refused at load)."""
    return next((line for line in lines if line.matches(role, resource, purpose)), None)
