"""Field-level access decisions: a small wrapper around one Casbin enforcer.

The Casbin model (``model.conf``) takes requests ``(role, resource, action,
purpose)`` where the action is one :class:`~policies.purposes.Operation`
(``read:clear``, ``read:masked``, ``write``), and policy lines that allow or
deny. Deny overrides allow, and nothing matched means deny. A second request
type ``(role, purpose)`` is the role x purpose table.

A read resolves in two Casbin questions: a deny on ``read:masked`` hides the
field; otherwise an allowed ``read:clear`` shows it in clear, an allowed
``read:masked`` shows it masked, and anything else hides it. A deny on
``read:clear`` alone therefore downgrades a field to masked, a deny on
``read:*`` hides it.

Ownership is not decided here: ``data_subject`` reads "its own record only",
and Casbin never sees record ids. The domain layer checks that the customer id
it serves equals the customer id of the caller's token before it asks this
enforcer anything.

Where the lines come from is pluggable: any Casbin adapter (the default policy
file, a list of lines, later a database table). :meth:`PolicyEnforcer.reload`
builds a fresh enforcer from the adapter, validates every line, and only then
swaps it in, so a bad change never replaces a good policy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import casbin
from casbin.effect import AllowOverrideEffector
from casbin.model import Model

from policies.attributes import ATTRIBUTE_PREFIX, attribute_resource
from policies.format_lines import FormatLine, format_for
from policies.mask_formats import FORMATS, MaskFormat
from policies.purposes import (
    CLEAR_ONLY,
    READ_RESOURCES,
    Action,
    Operation,
    Purpose,
    Resolution,
    Resource,
    Role,
)
from policies.sources import (
    PolicyError,
    PolicyFile,
    PolicyLines,
    default_model_text,
    default_policy_lines,
    short_name,
)
from policies.validation import PURPOSES, RESOURCES, ROLES, locator, rule_text, validate

__all__ = [
    "POLICY_ADMINISTRATOR",
    "POLICY_PURPOSE",
    "AccessDenied",
    "Explanation",
    "PolicyEnforcer",
    "PolicyError",
    "PolicyFile",
    "PolicyLines",
    "PurposeNotAllowed",
    "default_model_text",
    "default_policy_lines",
]


# Who changes the policy, and for which purpose. A policy that takes this purpose away
# from this role would leave no one able to change it again (every request of every
# role refused): such a policy is refused before it is stored.
POLICY_ADMINISTRATOR: Final = Role.ADMIN.value
POLICY_PURPOSE: Final = Purpose.ADMINISTRATION.value

_name = short_name
Rule = tuple[str, ...] | None  # a policy line with its type in front, or no line at all
_Answer = tuple[bool, Rule]


class AccessDenied(PolicyError):
    """The policy refuses this role the action on the resource for the purpose."""

    code = "FORBIDDEN"

    def __init__(self, role: str, purpose: str, resource: str, action: Action) -> None:
        super().__init__(
            f"role {_name(role)!r} may not {action.value} {_name(resource)!r} "
            f"for purpose {_name(purpose)!r}"
        )
        self.role = str(role)
        self.purpose = str(purpose)
        self.resource: str | None = str(resource)
        self.action: Action | None = action


class PurposeNotAllowed(AccessDenied):
    """The role may not act for this purpose at all (or the purpose is unknown)."""

    def __init__(self, role: str, purpose: str) -> None:
        PolicyError.__init__(
            self, f"purpose {_name(purpose)!r} is not allowed for role {_name(role)!r}"
        )
        self.role = str(role)
        self.purpose = str(purpose)
        self.resource = None
        self.action = None


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a field resolves the way it does: the deciding policy line, if any.

    ``rule`` is the policy line as Casbin holds it, with its type in front:
    ``("p", "support_agent", "email", "read:masked", "support", "allow")``.
    It is ``None`` when no line matched and the default (deny) decided.
    ``mask_format`` is the format a masked field shows (``default`` unless a ``p3``
    line names another, then ``format_rule``); ``None`` when the field is not masked.
    """

    resolution: Resolution
    rule: tuple[str, ...] | None
    reason: str
    mask_format: str | None = None
    format_rule: tuple[str, ...] | None = None


# -- loading and validation ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Grants:
    """Everything one (role, purpose) may do, computed once and cached."""

    allowed: bool
    reads: Mapping[str, Resolution]
    writes: frozenset[str]
    formats: Mapping[str, MaskFormat] = field(default_factory=dict)  # masked fields only


@dataclass(slots=True)
class _State:
    """One loaded policy: its deciding enforcer, its explaining twin, and its cache.

    The cache lives with the policy it was computed from, so a reload that
    swaps the state can never be polluted by a computation still running on
    the old one.
    """

    decider: Any
    explainer: Any
    purposes: Any
    attributes: tuple[str, ...] = ()  # the PII attributes' read resources, attr:<name>
    formats: tuple[FormatLine, ...] = ()  # the p3 lines: mask formats
    cache: dict[tuple[str, str], _Grants] = field(default_factory=dict)
    # (role, purpose, resource) -> resolution, for the granted resources that are not
    # customer fields (consent, data_requests, segments): asked on every page view
    resolved: dict[tuple[str, str, str], Resolution] = field(default_factory=dict)


def _build(model_text: str, adapter: Any, attributes: tuple[str, ...]) -> _State:  # noqa: ANN401
    model = Model()
    model.load_model_from_text(model_text)
    decider = casbin.Enforcer(model, adapter)
    formats = validate(decider, frozenset(attributes), locator(adapter))
    # The twin shares the decider's model (and so its lines) but stops at the
    # first matching allow line: after the decider allowed a request, it names
    # the line that granted it. Deny lines are named by the decider itself.
    # Sharing is safe because a decider never reloads in place: reload()
    # builds a new state, twin included.
    explainer = casbin.Enforcer(decider.get_model())
    explainer.set_effector(AllowOverrideEffector())
    return _State(decider, explainer, decider.new_enforce_context("2"), attributes, formats)


# -- the enforcer ------------------------------------------------------------------


# Casbin compiles each matcher with ast.parse on every call, and CPython 3.11's parser is
# not safe to enter from two threads at once ("AST constructor recursion depth mismatch",
# a SystemError seen when two requests missed the grants cache together). Decisions are
# cached per role and purpose, so one lock around Casbin costs only on a miss.
_CASBIN = threading.Lock()


def _ask(state: _State, role: str, resource: str, op: Operation, purpose: str) -> _Answer:
    with _CASBIN:
        ok, rule = state.decider.enforce_ex(str(role), str(resource), op.value, str(purpose))
    return bool(ok), (("p", *rule) if rule else None)


def _ask_purpose(state: _State, role: str, purpose: str) -> _Answer:
    with _CASBIN:
        ok, rule = state.decider.enforce_ex(state.purposes, str(role), str(purpose))
    return bool(ok), (("p2", *rule) if rule else None)


def _granting(state: _State, role: str, resource: str, op: Operation, purpose: str) -> Rule:
    with _CASBIN:
        _, rule = state.explainer.enforce_ex(str(role), str(resource), op.value, str(purpose))
    return ("p", *rule) if rule else None


def _format(state: _State, role: str, resource: str, purpose: str) -> tuple[MaskFormat, Rule]:
    """The mask format of a masked field, and the p3 line that names it (None: default)."""
    line = format_for(state.formats, str(role), str(resource), str(purpose))
    return (MaskFormat.DEFAULT, None) if line is None else (line.fmt, line.rule)


def _explain_masked(
    state: _State, role: str, resource: str, purpose: str, clear_rule: Rule
) -> Explanation:
    """A field an allow line masks: hidden if it has no mask, else masked in its format."""
    rule = _granting(state, role, resource, Operation.READ_MASKED, purpose)
    detail = "read:clear is denied" if clear_rule else "no line grants read:clear"
    if resource in CLEAR_ONLY:  # no mask: shown in clear or not at all
        why = f"an allow line on read:masked; {detail}; {resource} has no mask"
        return Explanation(Resolution.HIDDEN, rule, why)
    fmt, fmt_rule = _format(state, role, resource, purpose)
    if fmt_rule is not None:
        detail += f"; mask format {fmt.value} ({rule_text(fmt_rule[0], fmt_rule[1:])})"
    elif resource in FORMATS:
        detail += "; mask format default (no p3 line names one)"
    reason = f"an allow line on read:masked; {detail}"
    return Explanation(Resolution.MASKED, rule, reason, fmt.value, fmt_rule)


def _read(state: _State, role: str, resource: str, purpose: str) -> Resolution:
    masked, masked_rule = _ask(state, role, resource, Operation.READ_MASKED, purpose)
    if not masked and masked_rule is not None:
        return Resolution.HIDDEN  # a deny line on read:masked hides the field
    if _ask(state, role, resource, Operation.READ_CLEAR, purpose)[0]:
        return Resolution.CLEAR
    return Resolution.MASKED if masked and resource not in CLEAR_ONLY else Resolution.HIDDEN


class PolicyEnforcer:
    """Resolves fields to clear, masked or hidden, and refuses what the policy does not grant.

    Role, purpose and resource arguments are strings; the enums in
    :mod:`policies.purposes` are strings too. Unknown names are never an error
    of their own: nothing grants them, so they are refused like anything else.
    """

    def __init__(
        self,
        adapter: Any = None,  # noqa: ANN401 - a casbin Adapter
        *,
        model_text: str | None = None,
        attributes: Iterable[str] = (),
    ) -> None:
        """Load the lines from ``adapter`` (any Casbin adapter); the default policy if none.

        ``attributes`` names the declared PII attributes: each is a read resource
        ``attr:<name>``, and a line naming an undeclared ``attr:`` resource is refused.
        """
        self._adapter = adapter if adapter is not None else PolicyLines(default_policy_lines())
        self._model_text = model_text if model_text is not None else default_model_text()
        self._lock = threading.Lock()
        self._attributes = tuple(dict.fromkeys(attribute_resource(n) for n in attributes))
        self._state = _build(self._model_text, self._adapter, self._attributes)

    @classmethod
    def from_default(cls, *, attributes: Iterable[str] = ()) -> PolicyEnforcer:
        """The shipped model and default policy (``policies/default_policy.csv``)."""
        return cls(attributes=attributes)

    @classmethod
    def from_lines(
        cls, lines: Iterable[str | Sequence[str]], *, attributes: Iterable[str] = ()
    ) -> PolicyEnforcer:
        """The shipped model and exactly these policy lines."""
        return cls(PolicyLines(lines), attributes=attributes)

    @classmethod
    def from_file(cls, path: Path, *, attributes: Iterable[str] = ()) -> PolicyEnforcer:
        """The shipped model and the policy lines of a CSV file."""
        if not path.is_file():
            raise PolicyError(f"policy file {path} does not exist")
        return cls(PolicyFile(path), attributes=attributes)

    @property
    def attributes(self) -> tuple[str, ...]:
        """The declared PII attributes' names this policy knows."""
        return tuple(r.removeprefix(ATTRIBUTE_PREFIX) for r in self._attributes)

    @property
    def read_resources(self) -> tuple[str, ...]:
        """Every resource a read resolves: the fields and profile parts, and ``attr:<name>``
        for each declared PII attribute."""
        return (*(r.value for r in READ_RESOURCES), *self._attributes)

    def declare_attributes(self, names: Iterable[str]) -> None:
        """Know these PII attributes from now on (the vault's attribute file): the policy
        is validated against them and reloaded; on error the old state stays."""
        wanted = tuple(dict.fromkeys(attribute_resource(n) for n in names))
        with self._lock:
            self._state = _build(self._model_text, self._adapter, wanted)
            self._attributes = wanted

    def with_lines(self, lines: Iterable[str | Sequence[str]]) -> PolicyEnforcer:
        """An enforcer of the same model and attributes over other lines (to check a
        policy before it is stored)."""
        return PolicyEnforcer(
            PolicyLines(lines), model_text=self._model_text, attributes=self.attributes
        )

    def __repr__(self) -> str:
        return f"PolicyEnforcer(adapter={self._adapter!r})"

    def check_keeps_control(self) -> None:
        """Raise :class:`PolicyError` unless this policy lets the policy administrator act
        for the administration purpose: without it, no request could change it again."""
        allowed, rule = _ask_purpose(self._state, POLICY_ADMINISTRATOR, POLICY_PURPOSE)
        if allowed:
            return
        why = (
            f"the line ({rule_text(rule[0], rule[1:])}) denies it"
            if rule
            else f"no p2 line grants it (add 'p2, {POLICY_ADMINISTRATOR}, {POLICY_PURPOSE}, allow')"
        )
        raise PolicyError(
            f"the policy must let role {POLICY_ADMINISTRATOR!r} act for purpose "
            f"{POLICY_PURPOSE!r}, or no one could change it again: {why}"
        )

    @property
    def adapter(self) -> Any:  # noqa: ANN401 - a casbin Adapter
        return self._adapter

    def reload(self) -> None:
        """Read the lines again from the adapter; forget every cached decision.

        The new policy is loaded and validated before it replaces the old one:
        if loading fails, the error propagates and the old policy stays.
        """
        with self._lock:
            self._state = _build(self._model_text, self._adapter, self._attributes)

    # -- decisions ---------------------------------------------------------------

    def _grants(self, role: str, purpose: str) -> _Grants:
        state = self._state
        key = (str(role), str(purpose))
        grants = state.cache.get(key)
        if grants is not None:
            return grants
        allowed, _ = _ask_purpose(state, role, purpose)
        if allowed:
            reads = {r.value: _read(state, role, r.value, purpose) for r in READ_RESOURCES}
            reads.update((r, _read(state, role, r, purpose)) for r in state.attributes)
            writes = frozenset(
                r.value for r in Resource if _ask(state, role, r.value, Operation.WRITE, purpose)[0]
            )
            formats = {
                name: _format(state, role, name, purpose)[0]
                for name, how in reads.items()
                if how == Resolution.MASKED and name in FORMATS
            }
            grants = _Grants(True, reads, writes, formats)
        else:
            grants = _Grants(False, {}, frozenset())
        if key[0] in ROLES and key[1] in PURPOSES:  # bounded: unknown names are not cached
            state.cache[key] = grants
        return grants

    def check_purpose(self, role: str, purpose: str) -> None:
        """Raise :class:`PurposeNotAllowed` unless the role may act for this purpose."""
        if not self._grants(role, purpose).allowed:
            raise PurposeNotAllowed(role, purpose)

    def resolve_all(self, role: str, purpose: str) -> dict[str, Resolution]:
        """Every resource's resolution for this role and purpose (cached until :meth:`reload`).

        Raises :class:`PurposeNotAllowed` when the role may not use the purpose.
        """
        grants = self._grants(role, purpose)
        if not grants.allowed:
            raise PurposeNotAllowed(role, purpose)
        return dict(grants.reads)

    def resolve(self, role: str, purpose: str, resource: str) -> Resolution:
        """How ``resource`` reaches this role for this purpose; raises if the purpose is refused.
        Cached until :meth:`reload` like :meth:`resolve_all`, for every known resource."""
        grants = self._grants(role, purpose)
        if not grants.allowed:
            raise PurposeNotAllowed(role, purpose)
        known = grants.reads.get(str(resource))
        if known is not None:
            return known
        state = self._state
        key = (str(role), str(purpose), str(resource))
        found = state.resolved.get(key)
        if found is None:
            found = _read(state, role, resource, purpose)
            if key[0] in ROLES and key[1] in PURPOSES and key[2] in RESOURCES:  # bounded
                state.resolved[key] = found
        return found

    def mask_formats(self, role: str, purpose: str) -> dict[str, MaskFormat]:
        """The mask format of every customer field that resolves to masked for this role
        and purpose (``default`` unless a p3 line names another); cached like
        :meth:`resolve_all`. Raises :class:`PurposeNotAllowed` when the purpose is refused."""
        grants = self._grants(role, purpose)
        if not grants.allowed:
            raise PurposeNotAllowed(role, purpose)
        return dict(grants.formats)

    def check_write(self, role: str, purpose: str, resource: str) -> None:
        """Raise :class:`AccessDenied` unless the role may write ``resource`` for this purpose."""
        grants = self._grants(role, purpose)
        if not grants.allowed:
            raise PurposeNotAllowed(role, purpose)
        if str(resource) in grants.writes:
            return
        if (
            str(resource) in RESOURCES
            or not _ask(self._state, role, resource, Operation.WRITE, purpose)[0]
        ):
            raise AccessDenied(role, purpose, resource, Action.WRITE)

    def explain(self, role: str, resource: str, purpose: str) -> Explanation:
        """Which policy line decides how ``resource`` reaches this role for this purpose.

        A diagnosis, not a gate: it never raises for a refused purpose, it says so.
        """
        state = self._state
        allowed, purpose_rule = _ask_purpose(state, role, purpose)
        if not allowed:
            why = "a p2 line denies it" if purpose_rule else "no p2 line grants it (default deny)"
            return Explanation(
                Resolution.HIDDEN,
                purpose_rule,
                f"purpose {_name(purpose)!r} is not allowed for role {_name(role)!r}: {why}",
            )
        masked, masked_rule = _ask(state, role, resource, Operation.READ_MASKED, purpose)
        if not masked and masked_rule is not None:
            return Explanation(Resolution.HIDDEN, masked_rule, "a deny line on read:masked")
        clear, clear_rule = _ask(state, role, resource, Operation.READ_CLEAR, purpose)
        if clear:
            rule = _granting(state, role, resource, Operation.READ_CLEAR, purpose)
            return Explanation(Resolution.CLEAR, rule, "an allow line on read:clear")
        if masked:
            return _explain_masked(state, role, resource, purpose, clear_rule)
        if clear_rule is not None:
            return Explanation(
                Resolution.HIDDEN,
                clear_rule,
                "a deny line on read:clear; no line grants read:masked",
            )
        return Explanation(Resolution.HIDDEN, None, "no line grants a read (default deny)")
