"""The layers point one way: appliance/ knows neither Flask nor Qt; webapp/ and console/ never meet."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "appliance": {
        "flask",
        "flask_login",
        "flask_wtf",
        "flask_bootstrap",
        "werkzeug",
        "jinja2",
        "PySide6",
        "shiboken6",
        "webapp",
        "console",
    },
    "webapp": {"console", "PySide6", "shiboken6"},
    "console": {"webapp", "flask", "werkzeug"},
}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in the file, functions included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_from_the_layers_it_must_not_know(package):
    offenders = []
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imported_modules(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(REPO)} imports {', '.join(sorted(bad))}")
    assert offenders == []


def test_the_import_walker_catches_an_import_hidden_in_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import flask.json\n    from PySide6 import QtCore\n")
    assert {"flask", "PySide6"} <= imported_modules(sample)
