"""A small, stdlib-only import-graph checker for the layering rules of the design ("Layout").

It reads source with :mod:`ast` (nothing is imported), so it sees every import the way Python
would execute it:

* imports at any depth count: module level, inside functions, methods, ``try`` blocks;
* imports under ``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:`` do not (their ``else:``
  branch does; for ``if not TYPE_CHECKING:`` the body counts and the ``else:`` does not);
* ``importlib.import_module("literal")`` / ``__import__("literal")`` count as imports;
* relative imports are resolved; ``from pkg import name`` is an edge to ``pkg.name`` when that is
  a module of the tree, else to ``pkg`` (the names are kept on the edge);
  ``import a.b.c`` is an edge to ``a.b.c`` and the implicit parent-package edges are ignored.

Modules are the ``.py`` files under the package folders, named by the distribution's mapping:
``tasks/prepare.py`` is ``ocimodel.tasks.prepare`` (pyproject maps ocimodel.tasks to tasks/).

Run it as a script to print every current violation: ``python tests/unit/import_layering.py``.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest depends on tomli below 3.11
    import tomli as tomllib

ROOT_PACKAGE = "ocimodel"
#: The Prefect layer: installed under the ocimodel name, but not part of the core.
PREFECT_PACKAGES = ("ocimodel.tasks", "ocimodel.flows", "ocimodel.blocks")
#: Leaf modules and the ocimodel modules each one may import.
LEAVES: dict[str, frozenset[str]] = {
    "ocimodel.errors": frozenset(),
    "ocimodel.layout": frozenset({"ocimodel.errors"}),
    "ocimodel.files": frozenset({"ocimodel.errors"}),
    "ocimodel.codec": frozenset({"ocimodel.errors"}),
    "ocimodel.progress": frozenset(),
}
#: Which Prefect packages each Prefect package must not import (flows -> tasks -> core).
FORBIDDEN_DIRECTIONS: dict[str, tuple[str, ...]] = {
    "ocimodel.tasks": ("ocimodel.flows",),
    "ocimodel.blocks": ("ocimodel.tasks", "ocimodel.flows"),
}


def in_tree(name: str, package: str) -> bool:
    """Whether module ``name`` is ``package`` or one of its submodules."""
    return name == package or name.startswith(package + ".")


def is_core(name: str) -> bool:
    """The core: every ``ocimodel.*`` module except the Prefect packages."""
    return in_tree(name, ROOT_PACKAGE) and not any(in_tree(name, p) for p in PREFECT_PACKAGES)


def is_prefect(name: str) -> bool:
    """``prefect``, ``prefect.*`` and Prefect collections (``prefect_aws``...)."""
    top = name.split(".", 1)[0]
    return top == "prefect" or top.startswith("prefect_")


# --------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    relpath: str
    is_package: bool
    tree: ast.Module = field(repr=False, compare=False)


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``relpath:lineno``."""

    source: str
    target: str
    relpath: str
    lineno: int
    statement: str
    #: For ``from pkg import a, b`` resolved to ``pkg`` itself: the imported names.
    names: tuple[str, ...] = ()
    #: Inside a function or method (executed later, but still an import).
    nested: bool = False

    def describe(self) -> str:
        where = " (inside a function)" if self.nested else ""
        return f"{self.source} at {self.relpath}:{self.lineno}: `{self.statement}`{where}"


@dataclass(frozen=True)
class Cycle:
    """A strongly connected component and one cycle through it, as edges."""

    members: tuple[str, ...]
    path: tuple[Edge, ...]
    #: The component's other imports between its members (each may need cutting too).
    others: tuple[Edge, ...] = ()

    def describe(self) -> str:
        lines = [f"import cycle among {len(self.members)} module(s): {', '.join(self.members)}"]
        for edge in self.path:
            lines.append(f"    {edge.source} -> {edge.target}    {edge.describe()}")
        if self.others:
            lines.append("  other imports inside this component:")
            for edge in self.others:
                lines.append(f"    {edge.source} -> {edge.target}    {edge.describe()}")
        return "\n".join(lines)


@dataclass
class ImportGraph:
    root: Path
    modules: dict[str, Module]
    edges: list[Edge]

    def __repr__(self) -> str:
        return f"ImportGraph({self.root}, {len(self.modules)} modules, {len(self.edges)} imports)"

    def edges_from(self, source: str) -> list[Edge]:
        return [e for e in self.edges if e.source == source]


# --------------------------------------------------------------------------------- discovery


def package_dirs_from_pyproject(pyproject: Path) -> dict[str, str]:
    """``{package name: folder}`` for the root package and every ``package-dir`` entry."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    package_dir = dict(data.get("tool", {}).get("setuptools", {}).get("package-dir", {}))
    base = package_dir.pop("", ".")
    mapping = {ROOT_PACKAGE: str(Path(base) / ROOT_PACKAGE)}
    mapping.update(package_dir)
    return mapping


def discover_modules(root: Path, package_dirs: Mapping[str, str]) -> dict[str, Path | None]:
    """Module name -> file, for every ``.py`` file under the mapped package folders.

    A folder that holds Python files but no ``__init__.py`` is still importable (a namespace
    package): it is listed with ``None`` as its file, so ``from ocimodel import that_folder``
    resolves to it. (The packaging test refuses such folders: setuptools would leave them out.)
    """
    found: dict[str, Path | None] = {}
    for package, folder in package_dirs.items():
        top = (root / folder).resolve()
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*.py")):
            rel = path.relative_to(top)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            # A mapped package (e.g. ocimodel.tasks -> tasks/) wins over a same-named folder.
            owner = max((p for p in package_dirs if in_tree(name, p)), key=len)
            if owner != package:
                continue
            found[name] = path
            for i in range(len(rel.parts) - 1):
                folder_name = ".".join([package, *rel.parts[: i + 1]])
                if not (top.joinpath(*rel.parts[: i + 1]) / "__init__.py").is_file():
                    found.setdefault(folder_name, None)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _resolve_relative(module: Module, level: int, target: str | None) -> str:
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return "." * level + (target or "")  # beyond the top: keep it visible, unresolved
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


_DYNAMIC_IMPORTERS = {"import_module", "__import__"}


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: Module, known: Iterable[str]) -> None:
        self.module = module
        self.known = set(known)
        self.edges: list[Edge] = []
        self._depth = 0

    def _add(self, node: ast.AST, target: str, statement: str, names: tuple[str, ...] = ()):
        self.edges.append(
            Edge(
                source=self.module.name,
                target=target,
                relpath=self.module.relpath,
                lineno=node.lineno,
                statement=statement,
                names=names,
                nested=self._depth > 0,
            )
        )

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if _is_type_checking(test):
            for child in node.orelse:
                self.visit(child)
        elif (
            isinstance(test, ast.UnaryOp)
            and isinstance(test.op, ast.Not)
            and _is_type_checking(test.operand)
        ):
            for child in node.body:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _visit_scope(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = _visit_scope
    visit_AsyncFunctionDef = _visit_scope
    visit_Lambda = _visit_scope

    def visit_Import(self, node: ast.Import) -> None:
        statement = ast.unparse(node)
        for alias in node.names:
            self._add(node, alias.name, statement)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        statement = ast.unparse(node)
        if node.level:
            base = _resolve_relative(self.module, node.level, node.module)
        else:
            base = node.module or ""
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            if alias.name != "*" and candidate in self.known:
                self._add(node, candidate, statement)
            else:
                names = () if alias.name == "*" else (alias.name,)
                self._add(node, base, statement, names)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if (
            name in _DYNAMIC_IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            self._add(node, node.args[0].value, ast.unparse(node))
        self.generic_visit(node)


def build_graph(root: Path, package_dirs: Mapping[str, str] | None = None) -> ImportGraph:
    """Parse every module of the tree at ``root`` and collect its imports."""
    root = Path(root).resolve()
    if package_dirs is None:
        package_dirs = package_dirs_from_pyproject(root / "pyproject.toml")
    files = discover_modules(root, package_dirs)
    modules: dict[str, Module] = {}
    for name, path in files.items():
        if path is None:
            continue
        source = path.read_text(encoding="utf-8")
        relpath = path.relative_to(root).as_posix()
        tree = ast.parse(source, filename=relpath)
        modules[name] = Module(name, path, relpath, path.name == "__init__.py", tree)
    edges: list[Edge] = []
    for module in modules.values():
        collector = _ImportCollector(module, files)
        collector.visit(module.tree)
        edges.extend(collector.edges)
    return ImportGraph(root, modules, edges)


# ------------------------------------------------------------------------------------- rules


def core_layer_violations(graph: ImportGraph) -> list[Edge]:
    """Core modules importing Prefect or the Prefect packages (tasks, flows, blocks)."""
    return [
        e
        for e in graph.edges
        if is_core(e.source)
        and (is_prefect(e.target) or any(in_tree(e.target, p) for p in PREFECT_PACKAGES))
    ]


def direction_violations(graph: ImportGraph) -> list[Edge]:
    """tasks importing flows; blocks importing tasks or flows."""
    out = []
    for e in graph.edges:
        for package, forbidden in FORBIDDEN_DIRECTIONS.items():
            if in_tree(e.source, package) and any(in_tree(e.target, f) for f in forbidden):
                out.append(e)
    return out


def leaf_violations(
    graph: ImportGraph, leaves: Mapping[str, frozenset[str]] = LEAVES
) -> list[Edge]:
    """Leaf modules importing ocimodel modules other than the ones they are allowed."""
    return [
        e
        for e in graph.edges
        if e.source in leaves
        and in_tree(e.target, ROOT_PACKAGE)
        and e.target not in leaves[e.source]
    ]


def _eager_bindings(tree: ast.Module) -> set[str]:
    """Names bound when a module runs: module-level statements, not TYPE_CHECKING blocks."""
    bound: set[str] = set()

    def walk(stmts: Iterable[ast.stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.Import):
                bound.update((a.asname or a.name).split(".")[0] for a in stmt.names)
            elif isinstance(stmt, ast.ImportFrom):
                bound.update(a.asname or a.name for a in stmt.names)
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(stmt.name)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    bound.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(stmt, ast.If):
                if not _is_type_checking(stmt.test):
                    walk(stmt.body)
                walk(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                walk(stmt.body)
                for handler in stmt.handlers:
                    walk(handler.body)
                walk(stmt.orelse)
                walk(stmt.finalbody)
            elif isinstance(stmt, ast.With):
                walk(stmt.body)

    walk(tree.body)
    return bound


def lazy_reexport_violations(graph: ImportGraph) -> list[Edge]:
    """Core modules doing ``from pkg import Name`` for a name ``pkg`` exports lazily.

    ``pkg/__init__.py`` serves such a name from a module-level ``__getattr__``: the import is a
    hidden, run-time edge to the defining module that no static graph shows (and the classic way
    to hide a cycle). The core imports a name from the module that defines it. Importing a
    submodule this way (``from ocimodel import codec``) resolves to the submodule and is fine.
    """
    lazy_packages: dict[str, set[str]] = {}
    for module in graph.modules.values():
        if module.is_package:
            bound = _eager_bindings(module.tree)
            if "__getattr__" in bound:
                lazy_packages[module.name] = bound
    return [
        e
        for e in graph.edges
        if is_core(e.source)
        and e.target in lazy_packages
        and any(n not in lazy_packages[e.target] for n in e.names)
    ]


def _strongly_connected(nodes: Iterable[str], adj: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(adj.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adj.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def import_cycles(graph: ImportGraph) -> list[Cycle]:
    """Every strongly connected component of size > 1, and every self-import, with one path."""
    first_edge: dict[tuple[str, str], Edge] = {}
    for e in sorted(graph.edges, key=lambda e: (e.nested, e.relpath, e.lineno)):
        if e.source in graph.modules and e.target in graph.modules:
            first_edge.setdefault((e.source, e.target), e)
    adj: dict[str, set[str]] = defaultdict(set)
    for source, target in first_edge:
        adj[source].add(target)
    cycles = []
    for component in _strongly_connected(graph.modules, adj):
        start = component[0]
        if len(component) == 1:
            if (start, start) in first_edge:
                cycles.append(Cycle((start,), (first_edge[start, start],)))
            continue
        # Shortest cycle through `start` inside the component (BFS, then close the loop).
        members = set(component)
        parent: dict[str, str] = {start: start}
        queue = deque([start])
        closing = None
        while queue and closing is None:
            node = queue.popleft()
            for child in sorted(adj[node]):
                if child == start:
                    closing = node
                    break
                if child in members and child not in parent:
                    parent[child] = node
                    queue.append(child)
        assert closing is not None, component
        chain = [closing]
        while chain[-1] != start:
            chain.append(parent[chain[-1]])
        chain.reverse()
        chain.append(start)
        path = tuple(first_edge[a, b] for a, b in zip(chain[:-1], chain[1:], strict=True))
        others = tuple(
            e
            for (a, b), e in sorted(first_edge.items())
            if a in members and b in members and e not in path
        )
        cycles.append(Cycle(tuple(component), path, others))
    return sorted(cycles, key=lambda c: c.members)


def listing(edges: Iterable[Edge]) -> str:
    """One line per import statement (a statement importing several names shows once)."""
    lines: dict[tuple[str, str, int, str], str] = {}
    for e in edges:
        lines.setdefault((e.source, e.relpath, e.lineno, e.statement), "  " + e.describe())
    return "\n".join(lines[k] for k in sorted(lines))


def report(graph: ImportGraph) -> str:
    """Every violation of every rule, as text."""
    sections = [
        ("core imports Prefect or tasks/flows/blocks", core_layer_violations(graph)),
        ("Prefect packages importing against the direction", direction_violations(graph)),
        ("leaf modules importing ocimodel", leaf_violations(graph)),
        ("core importing a lazily re-exported name", lazy_reexport_violations(graph)),
    ]
    lines = []
    for title, edges in sections:
        lines.append(f"{title}: {len({(e.relpath, e.lineno) for e in edges})}")
        if edges:
            lines.append(listing(edges))
    cycles = import_cycles(graph)
    lines.append(f"import cycles: {len(cycles)}")
    lines.extend("  " + c.describe().replace("\n", "\n  ") for c in cycles)
    return "\n".join(lines)


if __name__ == "__main__":
    repo = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    print(report(build_graph(repo)))
