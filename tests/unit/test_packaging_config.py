"""pyproject lists its packages by hand (three of them live outside ocimodel/): keep it complete.

A package folder missing from ``[tool.setuptools] packages`` is silently left out of the wheel,
and an editable install (which maps the whole folder) hides it; the slow twin of this test,
``tests/integration/test_packaging.py``, builds and installs the real wheel.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest
from import_layering import package_dirs_from_pyproject, tomllib

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _is_package_data(package: str, rel: Path, top: Path) -> bool:
    """Whether every .py file of folder ``top/rel`` ships as package-data of an ancestor."""
    data = SETUPTOOLS.get("package-data", {})
    for depth in range(len(rel.parts) - 1, -1, -1):
        owner = ".".join([package, *rel.parts[:depth]])
        globs = data.get(owner, [])
        base = top.joinpath(*rel.parts[:depth])
        files = [f.relative_to(base).as_posix() for f in (top / rel).glob("*.py")]
        if globs and all(any(fnmatch(f, g) for g in globs) for f in files):
            return True
    return False


def _package_folders() -> dict[str, Path]:
    """Every folder under the mapped roots that Python would import as a package.

    A folder without ``__init__.py`` counts when it holds ``.py`` files (a namespace package),
    unless those files ship as package-data (templates, say).
    """
    found: dict[str, Path] = {}
    for package, folder in package_dirs_from_pyproject(REPO / "pyproject.toml").items():
        top = REPO / folder
        for path in sorted(p for p in [top, *top.rglob("*")] if p.is_dir()):
            rel = path.relative_to(top)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            if (path / "__init__.py").is_file() or (
                any(path.glob("*.py")) and not _is_package_data(package, rel, top)
            ):
                found[".".join([package, *rel.parts])] = path
    return found


def test_prefect_folders_install_under_the_ocimodel_name() -> None:
    assert SETUPTOOLS["package-dir"] == {
        "ocimodel.tasks": "tasks",
        "ocimodel.flows": "flows",
        "ocimodel.blocks": "blocks",
    }
    entry_points = PYPROJECT["project"]["entry-points"]["prefect.collections"]
    assert entry_points == {"ocimodel": "ocimodel.blocks"}


def test_every_package_folder_is_listed() -> None:
    listed = set(SETUPTOOLS["packages"])
    folders = _package_folders()
    missing = sorted(set(folders) - listed)
    assert not missing, (
        "package folders missing from [tool.setuptools] packages in pyproject.toml "
        f"(they would not be in the wheel): {missing}"
    )


def test_every_folder_of_python_files_is_a_regular_package() -> None:
    namespace = sorted(
        f"{name} ({path.relative_to(REPO)})"
        for name, path in _package_folders().items()
        if not (path / "__init__.py").is_file()
    )
    assert not namespace, (
        f"folders holding .py files but no __init__.py (namespace packages): {namespace}; add "
        "an __init__.py and list the package, or ship the files as package-data"
    )


@pytest.mark.parametrize("package", SETUPTOOLS["packages"])
def test_every_listed_package_exists(package: str) -> None:
    folders = _package_folders()
    assert package in folders and (folders[package] / "__init__.py").is_file(), (
        f"{package} is listed in pyproject.toml but has no package folder with an __init__.py"
    )
