"""The layering of the design, enforced on the source (no import executed).

flows -> tasks -> ocimodel core; blocks -> ocimodel core. The core never imports Prefect or
the Prefect packages; there is no import cycle; the leaf modules import only ocimodel.errors.
Imports count at any depth (a function-level import is still an edge) but not under
``if TYPE_CHECKING:``. The checker itself lives in ``import_layering.py`` beside this file and
is proven on small synthetic trees at the bottom. ``python tests/unit/import_layering.py``
prints every current violation.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from import_layering import (
    LEAVES,
    ImportGraph,
    build_graph,
    core_layer_violations,
    direction_violations,
    import_cycles,
    lazy_reexport_violations,
    leaf_violations,
    listing,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {
    "ocimodel": "ocimodel",
    "ocimodel.tasks": "tasks",
    "ocimodel.flows": "flows",
    "ocimodel.blocks": "blocks",
}


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return build_graph(REPO)


# ------------------------------------------------------------------------- the real tree


def test_the_tree_is_mapped_as_installed(graph: ImportGraph) -> None:
    """pyproject's package-dir is what the checker reads: the Prefect folders are found."""
    for package in ("ocimodel", *PACKAGE_DIRS):
        assert package in graph.modules, f"{package} not found under {REPO}"
    assert graph.modules["ocimodel.tasks"].relpath == "tasks/__init__.py"
    assert not any(name.split(".")[0] in {"tasks", "flows", "blocks"} for name in graph.modules)


def test_core_imports_neither_prefect_nor_tasks_flows_blocks(graph: ImportGraph) -> None:
    bad = core_layer_violations(graph)
    if bad:
        pytest.fail(
            "the ocimodel core must not import prefect nor ocimodel.tasks/flows/blocks "
            "(move the code to the Prefect layer, or invert the dependency):\n" + listing(bad),
            pytrace=False,
        )


def test_no_import_cycles(graph: ImportGraph) -> None:
    cycles = import_cycles(graph)
    if cycles:
        pytest.fail(
            "import cycles (function-level imports count; cut one import of each, e.g. by moving "
            "the shared code into a lower module):\n" + "\n".join(c.describe() for c in cycles),
            pytrace=False,
        )


def test_prefect_packages_depend_one_way(graph: ImportGraph) -> None:
    bad = direction_violations(graph)
    if bad:
        pytest.fail(
            "flows -> tasks -> core and blocks -> core: tasks must not import flows, blocks "
            "must not import tasks or flows:\n" + listing(bad),
            pytrace=False,
        )


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_module_imports_only_errors(graph: ImportGraph, leaf: str) -> None:
    assert leaf in graph.modules, f"leaf module {leaf} does not exist"
    allowed = sorted(LEAVES[leaf]) or ["nothing"]
    bad = leaf_violations(graph, {leaf: LEAVES[leaf]})
    if bad:
        pytest.fail(
            f"{leaf} is a leaf: of ocimodel it may import {', '.join(allowed)}:\n" + listing(bad),
            pytrace=False,
        )


def test_core_imports_names_from_their_defining_module(graph: ImportGraph) -> None:
    bad = lazy_reexport_violations(graph)
    if bad:
        pytest.fail(
            "the core imports a name that a package does not bind but serves (if at all) from a "
            "module-level __getattr__: a hidden run-time import; import it from the module that "
            "defines it:\n" + listing(bad),
            pytrace=False,
        )


# ---------------------------------------------------- the checker, on synthetic trees


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    for package_dir in PACKAGE_DIRS.values():
        init = root / package_dir / "__init__.py"
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text("", encoding="utf-8")
    return root


def _found(edges) -> list[tuple[str, int, str]]:
    return sorted((e.source, e.lineno, e.target) for e in edges)


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ocimodel/a.py": "from ocimodel import b\n",
            "ocimodel/b.py": """\
                import os


                def later():
                    from . import a

                    return a, os
                """,
            "ocimodel/c.py": "import ocimodel.a\n",  # reaches the cycle, is not in it
        },
    )
    graph = build_graph(root, PACKAGE_DIRS)
    cycles = import_cycles(graph)
    assert [c.members for c in cycles] == [("ocimodel.a", "ocimodel.b")]
    path = cycles[0].path
    assert [(e.source, e.target, e.lineno, e.nested) for e in path] == [
        ("ocimodel.a", "ocimodel.b", 1, False),
        ("ocimodel.b", "ocimodel.a", 5, True),
    ]
    text = cycles[0].describe()
    assert "ocimodel/b.py:5: `from . import a` (inside a function)" in text
    assert "ocimodel/a.py:1: `from ocimodel import b`" in text
    assert not core_layer_violations(graph) and not direction_violations(graph)


def test_checker_finds_a_self_import_and_a_longer_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ocimodel/selfish.py": "def f():\n    import ocimodel.selfish\n",
            "ocimodel/x.py": "from ocimodel.y import Y\n",
            "ocimodel/y.py": "Y = 1\nfrom ocimodel.pkg import z\n",
            "ocimodel/pkg/__init__.py": "",
            "ocimodel/pkg/z.py": "from .. import x\n",
        },
    )
    cycles = import_cycles(build_graph(root, PACKAGE_DIRS))
    assert [c.members for c in cycles] == [
        ("ocimodel.pkg.z", "ocimodel.x", "ocimodel.y"),
        ("ocimodel.selfish",),
    ]
    assert [e.target for e in cycles[0].path] == ["ocimodel.x", "ocimodel.y", "ocimodel.pkg.z"]


def test_checker_finds_prefect_imported_inside_a_core_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ocimodel/deploy.py": """\
                import json


                class Deployer:
                    def run(self):
                        from prefect.artifacts import create_markdown_artifact

                        return json, create_markdown_artifact
                """,
            "ocimodel/helpers.py": "def f():\n    from ocimodel.flows import quick\n",
            "flows/quick.py": "from prefect import flow\nfrom ocimodel.tasks import t\n",
            "tasks/t.py": "import prefect\nfrom ocimodel import deploy\n",
        },
    )
    graph = build_graph(root, PACKAGE_DIRS)
    bad = core_layer_violations(graph)
    assert _found(bad) == [
        ("ocimodel.deploy", 6, "prefect.artifacts"),
        ("ocimodel.helpers", 2, "ocimodel.flows.quick"),
    ]
    assert bad[0].describe() == (
        "ocimodel.deploy at ocimodel/deploy.py:6: "
        "`from prefect.artifacts import create_markdown_artifact` (inside a function)"
    )
    # tasks and flows may import prefect and the core; that is their job.
    assert not direction_violations(graph)


def test_checker_ignores_type_checking_only_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ocimodel/typed.py": """\
                from __future__ import annotations

                import typing
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    import prefect
                    from ocimodel.tasks import t
                    from ocimodel import other

                if typing.TYPE_CHECKING:
                    from prefect.blocks.core import Block
                else:
                    from ocimodel import other

                if not TYPE_CHECKING:
                    import json


                def f(block: Block) -> prefect.Flow:
                    if TYPE_CHECKING:
                        from ocimodel.flows import g
                    return other, json
                """,
            "ocimodel/other.py": "",
            "tasks/t.py": "",
            "flows/g.py": "",
        },
    )
    graph = build_graph(root, PACKAGE_DIRS)
    assert _found(graph.edges_from("ocimodel.typed")) == [
        ("ocimodel.typed", 1, "__future__"),
        ("ocimodel.typed", 3, "typing"),
        ("ocimodel.typed", 4, "typing"),
        ("ocimodel.typed", 14, "ocimodel.other"),
        ("ocimodel.typed", 17, "json"),
    ]
    assert not core_layer_violations(graph)
    assert not import_cycles(graph)


def test_checker_resolves_imports_like_python(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ocimodel/__init__.py": "from ocimodel.errors import Boom\n",
            "ocimodel/errors.py": "class Boom(Exception):\n    pass\n",
            "ocimodel/codec.py": "",
            "ocimodel/oci/__init__.py": "",
            "ocimodel/oci/auth.py": """\
                import a.b.c
                import importlib
                from . import storage
                from .storage import open_uri
                from .. import codec, Boom
                from ..metadata import *

                def f():
                    return importlib.import_module("ocimodel.codec")
                """,
            "ocimodel/oci/storage.py": "",
            "ocimodel/metadata/__init__.py": "",
            "ocimodel/nsfolder/mod.py": "from ocimodel import nsfolder\n",
            "tasks/prepare.py": "from ._retry import again\nfrom ocimodel.tasks import _retry\n",
            "tasks/_retry.py": "",
            "ocimodel/templates/data.txt": "not python",
        },
    )
    graph = build_graph(root, PACKAGE_DIRS)
    assert "ocimodel.tasks.prepare" in graph.modules
    assert graph.modules["ocimodel.tasks.prepare"].relpath == "tasks/prepare.py"
    assert _found(graph.edges_from("ocimodel.oci.auth")) == [
        ("ocimodel.oci.auth", 1, "a.b.c"),
        ("ocimodel.oci.auth", 2, "importlib"),
        ("ocimodel.oci.auth", 3, "ocimodel.oci.storage"),
        ("ocimodel.oci.auth", 4, "ocimodel.oci.storage"),
        ("ocimodel.oci.auth", 5, "ocimodel"),
        ("ocimodel.oci.auth", 5, "ocimodel.codec"),
        ("ocimodel.oci.auth", 6, "ocimodel.metadata"),
        ("ocimodel.oci.auth", 9, "ocimodel.codec"),
    ]
    [to_root] = [e for e in graph.edges_from("ocimodel.oci.auth") if e.target == "ocimodel"]
    assert to_root.names == ("Boom",)
    assert _found(graph.edges_from("ocimodel.tasks.prepare")) == [
        ("ocimodel.tasks.prepare", 1, "ocimodel.tasks._retry"),
        ("ocimodel.tasks.prepare", 2, "ocimodel.tasks._retry"),
    ]
    # a folder without __init__.py is a namespace package: importable, so resolvable
    assert _found(graph.edges_from("ocimodel.nsfolder.mod")) == [
        ("ocimodel.nsfolder.mod", 1, "ocimodel.nsfolder")
    ]
    # the package __init__'s edge to its own submodule is normal: no cycle, no violation
    assert not import_cycles(graph)
    assert not lazy_reexport_violations(graph)


def test_checker_enforces_direction_leaves_and_lazy_reexports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ocimodel/__init__.py": """\
                import importlib
                from typing import TYPE_CHECKING

                from ocimodel.errors import Boom

                __version__ = "1"
                _LAZY = {"Model": "ocimodel.model"}


                def __getattr__(name):
                    return getattr(importlib.import_module(_LAZY[name]), name)


                if TYPE_CHECKING:
                    from ocimodel.model import Model
                """,
            "ocimodel/errors.py": "import os\n",
            "ocimodel/layout.py": "from ocimodel.errors import Boom\nfrom ocimodel import files\n",
            "ocimodel/files.py": "from ocimodel import Boom, errors\n",
            "ocimodel/codec.py": "def f():\n    import ocimodel.model\n",
            "ocimodel/model.py": "from ocimodel import errors, Boom, __version__\n",
            "ocimodel/user.py": "def f():\n    from ocimodel import Model\n",
            "tasks/t.py": "from ocimodel.flows import f\nfrom ocimodel import Model\n",
            "flows/f.py": "from ocimodel.tasks import t\nfrom ocimodel.blocks import creds\n",
            "blocks/creds.py": "from ocimodel.tasks import t\nfrom ocimodel import model\n",
        },
    )
    graph = build_graph(root, PACKAGE_DIRS)
    assert _found(direction_violations(graph)) == [
        ("ocimodel.blocks.creds", 1, "ocimodel.tasks.t"),
        ("ocimodel.tasks.t", 1, "ocimodel.flows.f"),
    ]
    assert _found(leaf_violations(graph)) == [
        ("ocimodel.codec", 2, "ocimodel.model"),
        ("ocimodel.files", 1, "ocimodel"),
        ("ocimodel.layout", 2, "ocimodel.files"),
    ]
    # `from ocimodel import Boom` (eager) and `__version__` are bound by the __init__; `Model`
    # is served by __getattr__. Only the core is held to it: tasks may use the public names.
    lazy = lazy_reexport_violations(graph)
    assert _found(lazy) == [("ocimodel.user", 2, "ocimodel")]
    assert lazy[0].names == ("Model",)
    # flows -> blocks -> tasks -> flows is a cycle across the Prefect packages
    assert [c.members for c in import_cycles(graph)] == [
        ("ocimodel.blocks.creds", "ocimodel.flows.f", "ocimodel.tasks.t")
    ]
