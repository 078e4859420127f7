"""Layers point down: the import contracts in pyproject.toml ([tool.importlinter]) hold, and
services neither commit nor read the request.

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
