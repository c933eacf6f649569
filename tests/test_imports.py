"""Inside the core, imports run one way: leaves, config, storage, audit, accounts, collections, records,
backups, jobs, server, cli. Every import counts, at module level or inside a function; no module takes
another module's private name; and no chain of imports comes back to where it started."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The package order, bottom first: a module may import its own rank and the ranks below it, never above.
ORDER: list[tuple[str, ...]] = [
    ("appliance", "appliance.errors", "appliance.clock", "appliance.actors", "appliance.text", "appliance.durable"),
    ("appliance.config",),
    ("appliance.storage",),
    ("appliance.audit",),
    ("appliance.accounts",),
    ("appliance.collections",),
    ("appliance.records",),
    ("appliance.backups",),
    ("appliance.agents",),
    ("appliance.webhooks",),
    ("appliance.automations",),
    ("appliance.jobs",),
    ("appliance.server",),
    ("appliance.cli", "appliance.__main__"),
]
RANK = {name: rank for rank, names in enumerate(ORDER) for name in names}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module, dotted (a name imported from a package counts as its module when it is one)
    names: tuple[str, ...]  # the names taken with ``from ... import``
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def known_modules(root: Path, package: str = "appliance") -> set[str]:
    return {module_name(p, root) for p in (root / package).rglob("*.py")}


def imports_of(path: Path, root: Path, modules: set[str]) -> list[Import]:
    """Every import of a project module in ``path``, functions included, with relative imports resolved."""
    source = module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found.append(Import(source, alias.name, (), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = source.split(".") if is_package else source.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.append(Import(source, sub, (), node.lineno))
                elif base in modules:
                    found.append(Import(source, base, (alias.name,), node.lineno))
    return found


def rank_of(module: str) -> int | None:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        rank = RANK.get(".".join(parts[:end]))
        if rank is not None:
            return rank
    return None


def all_imports(root: Path, package: str) -> list[Import]:
    modules = known_modules(root)
    return [i for p in sorted((root / package).rglob("*.py")) for i in imports_of(p, root, modules)]


def order_violations(imports: list[Import]) -> list[str]:
    bad = []
    for i in imports:
        here, there = rank_of(i.source), rank_of(i.target)
        if here is None:
            bad.append(f"{i.source} is in no package of the order")
        elif there is not None and there > here:
            bad.append(f"{i.source}:{i.line} imports {i.target}, which sits above it")
    return sorted(set(bad))


def private_imports(imports: list[Import]) -> list[str]:
    return [
        f"{i.source}:{i.line} takes {i.target}.{name}"
        for i in imports
        for name in i.names
        if name.startswith("_") and not name.startswith("__") and i.target != i.source
    ]


def private_attribute_uses(path: Path, root: Path, modules: set[str]) -> list[str]:
    """``module._name`` where ``module`` is an imported project module (``import a.b as m; m._x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return [
        f"{module_name(path, root)}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def cycles(imports: list[Import]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan), as a sorted list."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        if i.target != i.source:
            graph.setdefault(i.source, set()).add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            # The strongly connected component is ``node`` and everything above it on the stack.
            at = stack.index(node)
            group = stack[at:]
            del stack[at:]
            on_stack.difference_update(group)
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_every_core_module_has_a_place_in_the_package_order():
    unplaced = sorted(m for m in known_modules(REPO) if rank_of(m) is None)
    assert unplaced == []


def test_core_imports_run_down_the_package_order():
    assert order_violations(all_imports(REPO, "appliance")) == []


@pytest.mark.parametrize("package", ["appliance", "webapp", "console"])
def test_no_module_takes_another_modules_private_name(package):
    modules = known_modules(REPO) | known_modules(REPO, package)
    imports = [i for p in sorted((REPO / package).rglob("*.py")) for i in imports_of(p, REPO, modules)]
    uses = [u for p in sorted((REPO / package).rglob("*.py")) for u in private_attribute_uses(p, REPO, modules)]
    assert private_imports(imports) + uses == []


@pytest.mark.parametrize("package", ["appliance", "webapp", "console"])
def test_no_chain_of_imports_comes_back_to_where_it_started(package):
    modules = known_modules(REPO) | known_modules(REPO, package)
    imports = [i for p in sorted((REPO / package).rglob("*.py")) for i in imports_of(p, REPO, modules)]
    assert cycles(imports) == []


# The checks themselves must be able to fail.


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_walker_finds_a_cycle_made_of_imports_inside_functions(tmp_path):
    root = _tree(
        tmp_path,
        {
            "appliance/__init__.py": "",
            "appliance/jobs/__init__.py": "",
            "appliance/jobs/runner.py": "def f():\n    from appliance.backups import drill\n",
            "appliance/backups/__init__.py": "",
            "appliance/backups/drill.py": "from appliance.jobs.runner import f\n",
        },
    )
    found = cycles(all_imports(root, "appliance"))
    assert found == [["appliance.backups.drill", "appliance.jobs.runner"]]


def test_the_walker_finds_an_import_against_the_order_and_a_private_name(tmp_path):
    root = _tree(
        tmp_path,
        {
            "appliance/__init__.py": "",
            "appliance/storage/__init__.py": "",
            "appliance/storage/db.py": "from appliance.accounts.users import _hash\n",
            "appliance/accounts/__init__.py": "",
            "appliance/accounts/users.py": "from .. import errors\n_hash = 1\n",
            "appliance/errors.py": "",
        },
    )
    imports = all_imports(root, "appliance")
    assert order_violations(imports) == ["appliance.storage.db:1 imports appliance.accounts.users, which sits above it"]
    assert private_imports(imports) == ["appliance.storage.db:1 takes appliance.accounts.users._hash"]
    assert any(i.target == "appliance.errors" and i.source == "appliance.accounts.users" for i in imports)
