"""The package's import graph and the private names used across modules, read from the source.

``python tools/layout.py`` prints every import cycle (imports inside functions count), every
import that runs against the layers, and every private name (``_x``) that one module takes from
another (package, notebooks, benchmarks, tools). ``tests/test_layout.py`` asserts all three
lists are empty. Nothing is imported or run: the files are parsed.
"""
import ast
import json
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "reinmax"

LAYERS = [
    ["reinmax.estimators", "reinmax.statistics", "reinmax.paper", "reinmax.data"],
    ["reinmax.theory", "reinmax.models"],
    ["reinmax.experiments"],
    ["reinmax.sweep"],
    ["reinmax.reporting"],
]
"""The layers from the bottom up: a module may import its own layer's other packages only where
it is listed lower in the same row (none here: a row's packages know nothing of each other,
except what :data:`ALLOWED_SIDEWAYS` says) and any layer below."""

ALLOWED_SIDEWAYS = {("reinmax.models", "reinmax.theory"), ("reinmax.data", "reinmax.paper")}
"""(importer, imported) pairs within one layer that are allowed."""

ENTRY_POINTS = ("cli", "__main__")
"""Command-line modules: entry points that may import any layer (nothing imports them)."""

TOP = {"reinmax", "reinmax.aliases"}
"""The public face and the alias mechanism: above every layer."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, name: str, modules: Dict[str, Path]) -> Set[str]:
    """Every package module ``name`` imports, at module level or inside functions. ``from p
    import x`` counts as importing ``p.x`` where that is a module, else ``p``."""
    found: Set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(name, is_package, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("reinmax") and target != name:
                found.add(target)
    return found


def graph() -> Dict[str, Set[str]]:
    """Module -> the package modules it imports. A submodule's import also runs its packages'
    ``__init__``; those edges are added, so that a cycle through a package's face is seen."""
    modules = package_modules()
    edges = {name: imports_of(path, name, modules) for name, path in modules.items()}
    for name in modules:
        parent = name.rpartition(".")[0]
        for target in list(edges[name]):
            package = target.rpartition(".")[0]
            while package and package != parent and not name.startswith(package + "."):
                if package in modules:
                    edges[name].add(package)
                package = package.rpartition(".")[0]
    return edges


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer_of(name: str):
    for level, row in enumerate(LAYERS):
        for package in row:
            if name == package or name.startswith(package + "."):
                return level, package
    return None


def against_layers(edges: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    """Imports from a lower layer to a higher one, or sideways where not allowed."""
    bad = []
    for importer, targets in edges.items():
        if importer in TOP or importer.rpartition(".")[2] in ENTRY_POINTS:
            continue
        mine = layer_of(importer)
        for target in targets:
            theirs = layer_of(target)
            if target in TOP:
                if target == "reinmax" and importer.startswith(("reinmax.experiments",
                                                                "reinmax.sweep", "reinmax.reporting")):
                    continue  # the public API (reinmax.get_estimator, reinmax.ESTIMATORS)
                if target == "reinmax":
                    bad.append((importer, target))
                continue
            if mine is None or theirs is None:
                bad.append((importer, target))
                continue
            if theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]
                                       and (mine[1], theirs[1]) not in ALLOWED_SIDEWAYS):
                bad.append((importer, target))
    return sorted(bad)


# --------------------------------------------------------------------------- private names
def python_sources() -> Iterator[Tuple[str, str]]:
    """(label, source) of every Python file and notebook code cell outside tests."""
    for folder in ("reinmax", "benchmarks", "tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield str(path.relative_to(ROOT)), path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        # One source per notebook (a name imported in one cell is used in later ones); IPython
        # magics are not Python, so they become blank lines.
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in source.splitlines())
        yield str(path.relative_to(ROOT)), source


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_crossings() -> List[str]:
    """``from reinmax.x import _y``, ``import reinmax._x``, and ``m._y`` where ``m`` is a name
    bound to a reinmax module or object imported from another module."""
    found = []
    for label, source in python_sources():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        own = label.startswith("reinmax/") and Path(label).stem
        imported: Set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                relative = node.level > 0
                if not (relative or (node.module or "").startswith("reinmax")):
                    continue
                if any(private(part) for part in (node.module or "").split(".")):
                    found.append(f"{label}:{node.lineno}: from {node.module} import ...")
                for alias in node.names:
                    if private(alias.name):
                        found.append(f"{label}:{node.lineno}: imports {alias.name} from "
                                     f"{'.' * node.level}{node.module or ''}")
                    imported.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("reinmax"):
                        if any(private(part) for part in alias.name.split(".")):
                            found.append(f"{label}:{node.lineno}: import {alias.name}")
                        imported.add((alias.asname or alias.name).split(".")[0])
        subclasses = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                      and any(isinstance(b, (ast.Name, ast.Attribute)) and
                              (ast.unparse(b).split(".")[0] in imported) for b in node.bases)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in subclasses:
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and private(item.name):
                        found.append(f"{label}:{item.lineno}: {node.name} overrides {item.name}")
            if isinstance(node, ast.Attribute) and private(node.attr):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in imported:
                    found.append(f"{label}:{node.lineno}: {ast.unparse(node)}")
    return found


def main() -> int:
    edges = graph()
    problems = 0
    for component in cycles(edges):
        problems += 1
        print("cycle:", " <-> ".join(component))
    for importer, target in against_layers(edges):
        problems += 1
        print(f"against the layers: {importer} imports {target}")
    for line in private_crossings():
        problems += 1
        print("private name across modules:", line)
    print(f"{problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
