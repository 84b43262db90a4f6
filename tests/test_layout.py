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


def test_only_vault_crypto_imports_the_pkcs11_binding() -> None:
    """No module outside vault/crypto imports python-pkcs11 (bench included)."""
    offenders = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "vault/crypto" not in path.as_posix()
        and any(n == "pkcs11" or n.startswith("pkcs11.") for n in _imports(path))
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


PRODUCT = ["api", "vault", "policies", "consent", "audit", "bench"]
MAX_MODULE_LINES = 500
VAULT_FEATURES = [
    "vault/customers",
    "vault/interactions",
    "vault/importing",
    "vault/demo",
    "vault/segments",
    "vault/privacy",
    "vault/audit_trail",
    "vault/authorization",
    "vault/sign_in",
]


def _product_modules() -> list[Path]:
    return sorted(p for package in PRODUCT for p in (ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Our modules that ``path`` imports, outside ``if TYPE_CHECKING:`` blocks.

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``;
    relative imports are resolved against the module's package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            module = target
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module and module != name:
                found.add(module)
    return found


def test_no_product_module_is_over_the_size_guide() -> None:
    """No module outside migrations/ and tests/ is over 500 lines (STYLE.md's guide)."""
    over = {
        str(p.relative_to(ROOT)): n
        for p in _product_modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}


def test_no_import_circle_between_product_modules() -> None:
    """The modules of api, vault, consent, policies, audit and bench import in one
    direction: the import graph (run-time imports, function-level ones included) has
    no cycle."""
    paths = {_module_name(p): p for p in _product_modules()}
    known = set(paths)
    graph = {name: _runtime_imports(path, name, known) for name, path in paths.items()}
    cycles = _cycles(graph)
    assert cycles == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_says_what_it_owns() -> None:
    """Every package has a docstring; each vault feature package's docstring names what
    it owns and what it may import."""
    undocumented = sorted(
        str(init.relative_to(ROOT))
        for package in PRODUCT
        for init in (ROOT / package).rglob("__init__.py")
        if not _docstring(init)
    )
    vague = sorted(
        feature
        for feature in VAULT_FEATURES
        if not all(word in _docstring(ROOT / feature / "__init__.py") for word in _SAYS)
    )
    assert (undocumented, vague) == ([], [])


_SAYS = ("Owns", "May import")


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
