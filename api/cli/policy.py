"""``cvault policy``: the operator's view of the access policy, and the way back.

``show`` prints the policy in force (the newest stored version, or the shipped default),
``explain ROLE FIELD PURPOSE`` names the line that decides a field, ``history`` lists the
stored versions, ``validate FILE`` checks a file as ``replace`` would and stores nothing,
``diff FILE`` shows what replacing the policy with a file would change,
``replace FILE`` stores the file as a new version and ``reset`` stores the shipped
default. They work while servers run: servers pick a new version up on their next
policy check. Changes are checked like ``replacePolicy`` (a policy that would lock the
administrator out is refused with the rule it breaks), stored as the operator
(``system:policy``) and audited.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from api.cli.common import EXIT_REJECTED, EXIT_USAGE, fail, opened, out
from vault.errors import VaultError

if TYPE_CHECKING:
    from vault.authorization.context import AccessContext
    from vault.runtime import Vault

__all__ = ["policy_app"]

policy_app = typer.Typer(
    help="The access policy: show, explain, history, validate, diff, replace, reset.",
    no_args_is_help=True,
)


def _context() -> AccessContext:
    """The operator's access context (``system:policy``)."""
    from vault.authorization.context import AccessContext

    return AccessContext.system("policy")


def _in_force(vault: Vault) -> tuple[int, list[str]]:
    from policies import PolicyError

    try:
        vault.policies.refresh()
    except PolicyError as exc:
        raise fail(f"the stored policy cannot be loaded: {exc}", EXIT_REJECTED) from None
    with vault.unit(_context()) as session:
        return vault.policies.current(session)


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise fail(f"{path} cannot be read as UTF-8 text", EXIT_USAGE) from None


def _plain(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


@policy_app.command("show")
def show() -> None:
    """Print the policy in force, its version first (0: the shipped default)."""
    with opened() as vault:
        version, lines = _in_force(vault)
    _plain(f"# version {version}")
    for line in lines:
        _plain(line)


@policy_app.command("explain")
def explain(role: str, field: str, purpose: str) -> None:
    """Which policy line decides how FIELD reaches ROLE for PURPOSE."""
    with opened() as vault:
        _in_force(vault)
        with vault.unit(_context()) as session:
            found = vault.authz.explain(session, role, field, purpose)
    _plain(f"resolution: {found.resolution.value}")
    _plain(f"rule: {', '.join(found.rule) if found.rule else '(none: default deny)'}")
    _plain(f"reason: {found.reason}")
    if found.mask_format is not None:
        source = ", ".join(found.format_rule) if found.format_rule else "(no p3 line: default)"
        _plain(f"mask format: {found.mask_format} {source}")


@policy_app.command("history")
def history() -> None:
    """Every stored version, newest first: version, time, actor, number of rules."""
    with opened() as vault, vault.unit(_context()) as session:
        versions = vault.policies.history(session)
    if not versions:
        _plain("no stored version: the shipped default (version 0) is in force")
    for v in versions:
        _plain(f"{v.version}  {v.created_at.isoformat()}  {v.actor}  {v.lines} rules")


@policy_app.command("validate")
def validate(file: Path) -> None:
    """Check FILE as ``replace`` would, without storing it: "valid", or the first rule it
    breaks (a bad line by its line number in FILE and its text)."""
    lines = _read(file)
    with opened() as vault:
        try:
            vault.policies.check(lines)
        except VaultError as exc:
            raise fail(f"{file}: {exc}", EXIT_REJECTED) from None
    _plain(f"{file}: valid; nothing stored")


@policy_app.command("diff")
def diff(file: Path) -> None:
    """What replacing the policy in force with FILE would change (a unified diff)."""
    wanted = _read(file)
    with opened() as vault:
        version, lines = _in_force(vault)
    changes = list(
        difflib.unified_diff(
            lines, [line.strip() for line in wanted], f"version {version}", str(file), lineterm=""
        )
    )
    for line in changes:
        _plain(line)
    if not changes:
        _plain("no change")


def _store(vault: Vault, lines: list[str] | None) -> int:
    try:
        with vault.unit(_context()) as session:
            if lines is None:
                return vault.policies.reset(session)
            return vault.policies.replace(session, lines)
    except VaultError as exc:
        raise fail(str(exc), EXIT_REJECTED) from None


@policy_app.command("replace")
def replace(file: Path) -> None:
    """Store FILE (lines as in policies/default_policy.csv) as the new policy version."""
    lines = _read(file)
    with opened() as vault:
        version = _store(vault, lines)
    _plain(f"policy version {version} stored; servers apply it on their next policy check")


@policy_app.command("reset")
def reset() -> None:
    """Store the shipped default policy as the new version (the way back from a bad one)."""
    with opened() as vault:
        version = _store(vault, None)
    _plain(f"default policy stored as version {version}; servers apply it on their next check")
