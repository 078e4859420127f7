"""Layers point down: the import contracts in pyproject.toml ([tool.importlinter]) hold (no
import circle between app's packages and modules, no layer importing one above it), no import hides
inside a function, and services neither commit nor read the request.

A model that imports a feature, or mail that imports a feature's services, breaks a contract and
this test names the offending import chain."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _services_modules() -> list[Path]:
    return sorted((ROOT / "app").rglob("services.py"))


def test_services_never_commit() -> None:
    """Routes, jobs, CLI commands and the outbox sender commit; a service that committed would
    end its caller's transaction halfway."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _services_modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
    ]
    assert _services_modules() and not found, found


_REQUEST_STATE = {
    "flask": {"request", "session", "g"},
    "flask_login": {"current_user"},
    "app.tenancy": {"current_org", "current_role", "current_membership"},
}


def test_services_never_read_the_request() -> None:
    """A service is told the org, the acting user and their role; it reads no request state
    (imports inside functions included)."""
    found = []
    for path in _services_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in _REQUEST_STATE:
                names = {alias.name for alias in node.names} & _REQUEST_STATE[node.module]
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in sorted(names)]
            elif isinstance(node, ast.Import):
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}"
                    for alias in node.names
                    if alias.name == "flask_login"
                ]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "flask" and node.attr in _REQUEST_STATE["flask"]:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} flask.{node.attr}")
    assert not found, found


PENDING = {
    "app/mail",
    "app/providers",
    "app/outbox",
    "app/jobs/send.py",
    "app/jobs/sweep.py",
}


def _pending(relative: str) -> bool:
    return any(relative == p or relative.startswith(p + "/") for p in PENDING)


def _function_local_imports(source: str, relative: str) -> list[str]:
    """Imports inside any function (methods and nested functions included), except those of
    create_app in app/__init__.py, which registers the blueprints."""
    found = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if func.name == "create_app" and relative == "app/__init__.py":
            continue
        for node in ast.iter_child_nodes(func):
            found += [
                f"{relative}:{inner.lineno} {func.name} imports {_imported(inner)}"
                for inner in _walk_skipping_functions(node)
                if isinstance(inner, ast.Import | ast.ImportFrom)
            ]
    return found


def _imported(node: ast.Import | ast.ImportFrom) -> str:
    if isinstance(node, ast.ImportFrom):
        return "." * node.level + (node.module or "")
    return ", ".join(alias.name for alias in node.names)


def _walk_skipping_functions(node: ast.AST) -> list[ast.AST]:
    """The node and what it holds, without descending into nested functions (each is visited on
    its own, so an import is reported once, under the function it sits in)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return []
    return [node] + [
        n for child in ast.iter_child_nodes(node) for n in _walk_skipping_functions(child)
    ]


def test_no_function_local_imports() -> None:
    """An import inside a function hides a circle or a layer running upward from the contracts:
    move the function to where both sides can reach it instead."""
    modules = {
        path.relative_to(ROOT).as_posix(): path for path in sorted((ROOT / "app").rglob("*.py"))
    }
    found = [
        hit
        for relative, path in modules.items()
        if not _pending(relative)
        for hit in _function_local_imports(path.read_text(), relative)
    ]
    assert len(modules) > 50 and not found, "\n".join(found)


def test_function_local_imports_are_found_in_methods_and_nested_functions() -> None:
    """The check would pass vacuously if it missed them; create_app alone may import inside."""
    source = (
        "def create_app():\n    from app.auth import bp\n"
        "class Store:\n    def load(self):\n        def inner():\n            import zoneinfo\n"
        "        if True:\n            from app import models\n"
    )
    assert sorted(_function_local_imports(source, "app/__init__.py")) == [
        "app/__init__.py:6 inner imports zoneinfo",
        "app/__init__.py:8 load imports app",
    ]
    assert len(_function_local_imports(source, "app/other.py")) == 3
