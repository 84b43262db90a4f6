"""Checking a policy's lines before it is put in force: every name known (or a keyMatch
pattern), every line of the right length and effect, no mask on a clear-only resource, and
the ``p3`` mask-format lines (:mod:`policies.format_lines`). Each refusal is a
:class:`PolicyError` naming the line: its number among the lines given (a file's line
number) when the source holds lines, and its text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from policies.attributes import ATTRIBUTE_PREFIX
from policies.format_lines import FORMAT_LINE, FormatLine, parse_format_lines
from policies.purposes import CLEAR_ONLY, Operation, Purpose, Resource, Role
from policies.sources import PolicyError, short_name

__all__ = ["PURPOSES", "RESOURCES", "ROLES", "locator", "rule_text", "validate"]

_EFFECTS: Final = frozenset({"allow", "deny"})
ROLES: Final = frozenset(r.value for r in Role)
PURPOSES: Final = frozenset(p.value for p in Purpose)
RESOURCES: Final = frozenset(r.value for r in Resource)
_OPERATIONS: Final = frozenset(o.value for o in Operation)
_name = short_name


def _check_name(where: str, value: str, known: frozenset[str], what: str) -> None:
    if value in known:
        return
    star = value.find("*")
    if star != -1 and star == len(value) - 1:
        return  # a keyMatch pattern: a prefix followed by one trailing "*"
    raise PolicyError(f"{where}: unknown {what} {_name(value)!r}")


def rule_text(kind: str, rule: Sequence[str]) -> str:
    """A line as messages echo it, its type in front: ``p3, support_agent, phone, ...``."""
    return _name(", ".join([kind, *rule]))


def locator(adapter: Any) -> Callable[[str, int, Sequence[str]], str]:  # noqa: ANN401 - Adapter
    """Names a line in a message: its number among the lines given (comments and blank
    lines counted, so a file's line number) when the adapter holds lines, else its number
    among the lines of its type; and its text."""
    numbers: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(getattr(adapter, "lines", ()), start=1):
        numbers.setdefault(tuple(part.strip() for part in line.split(",")), number)

    def where(kind: str, number: int, rule: Sequence[str]) -> str:
        found = numbers.get((kind, *rule))
        at = f"{kind} #{number}" if found is None else str(found)
        return f"policy line {at} ({rule_text(kind, rule)})"

    return where


def validate(
    decider: Any,  # noqa: ANN401 - an Enforcer
    attributes: frozenset[str],
    locate: Callable[[str, int, Sequence[str]], str],
) -> tuple[FormatLine, ...]:
    """Refuse a bad line (naming it); return the p3 lines."""
    resources = RESOURCES | attributes
    for number, rule in enumerate(decider.get_named_policy("p"), start=1):
        where = locate("p", number, rule)
        if len(rule) != 5:
            raise PolicyError(f"{where}: has {len(rule)} fields; p lines need 5")
        role, resource, action, purpose, effect = rule
        _check_name(where, role, ROLES, "role")
        if resource.startswith(ATTRIBUTE_PREFIX) and resource not in resources:
            _check_attribute(where, resource)
        else:
            _check_name(where, resource, resources, "resource")
        _check_name(where, action, _OPERATIONS, "action")
        _check_name(where, purpose, PURPOSES, "purpose")
        if effect not in _EFFECTS:
            raise PolicyError(f"{where}: effect must be allow or deny")
        if resource in CLEAR_ONLY and action == Operation.READ_MASKED and effect == "allow":
            raise PolicyError(
                f"{where}: resource {resource!r} has no mask (clear or hidden): "
                "grant read:clear, or nothing"
            )
    for number, rule in enumerate(decider.get_named_policy("p2"), start=1):
        where = locate("p2", number, rule)
        if len(rule) != 3:
            raise PolicyError(f"{where}: has {len(rule)} fields; p2 lines need 3")
        role, purpose, effect = rule
        _check_name(where, role, ROLES, "role")
        _check_name(where, purpose, PURPOSES, "purpose")
        if effect not in _EFFECTS:
            raise PolicyError(f"{where}: effect must be allow or deny")
    if FORMAT_LINE not in decider.get_model().model["p"]:
        return ()  # a model without mask formats: every masked field shows its default
    return parse_format_lines(
        decider.get_named_policy(FORMAT_LINE),
        where=lambda number, rule: locate(FORMAT_LINE, number, rule),
        check_role=lambda at, role: _check_name(at, role, ROLES, "role"),
        check_purpose=lambda at, purpose: _check_name(at, purpose, PURPOSES, "purpose"),
        roles=ROLES,
        purposes=PURPOSES,
    )


def _check_attribute(where: str, resource: str) -> None:
    """An ``attr:`` resource that is not a declared PII attribute: a pattern, or refused."""
    star = resource.find("*")
    if star != -1 and star == len(resource) - 1:
        return
    raise PolicyError(
        f"{where}: unknown resource {_name(resource)!r}: not a declared PII attribute "
        "(policies/attributes.toml, CVAULT_ATTRIBUTES_FILE)"
    )
