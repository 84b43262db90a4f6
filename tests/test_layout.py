"""Structural rules the import-linter contracts cannot express on their own."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["api", "vault", "policies", "consent", "audit", "migrations", "bench"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_vault_crypto_imports_cryptography() -> None:
    """No module outside vault/crypto imports the cryptography package."""
    offenders = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "vault/crypto" not in path.as_posix()
        and any(n == "cryptography" or n.startswith("cryptography.") for n in _imports(path))
    )
    assert offenders == []


def test_only_one_module_touches_the_aead_primitive() -> None:
    """Inside vault/crypto only _aead.py imports the AEAD primitive."""
    users = sorted(
        path.name
        for path in (ROOT / "vault" / "crypto").rglob("*.py")
        if any("aead" in n and n.startswith("cryptography") for n in _imports(path))
    )
    assert users == ["_aead.py"]
