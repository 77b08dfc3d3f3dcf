"""The wheel, installed for real (not editable), from a folder outside the repository.

Acceptance: ``import tasks``, ``import flows`` and ``import blocks`` fail; ``ocimodel.tasks``,
``ocimodel.flows`` and ``ocimodel.blocks`` import, from the installed copy; the
``prefect.collections`` entry point ``ocimodel`` resolves to ``ocimodel.blocks``.

How, fast and faithful:

* The repository is copied to a temporary folder (building in place would write ``build/`` and
  egg-info into the work tree) and built with ``pip wheel --no-deps``, in pip's usual isolated
  build environment (setuptools and wheel come from the package index, as for any user).
* The wheel goes into a fresh venv made with ``--system-site-packages`` and installed with
  ``--no-deps --ignore-installed``: the dependencies (prefect, oci, ...) come from this
  environment, so the real imports run, and nothing is downloaded but the build backend.
* The checks run in that venv with ``python -I`` (no PYTHONPATH, no user site, no current
  folder on sys.path) from an empty temporary folder. This environment holds an *editable*
  install of ocimodel whose meta-path finder maps ``ocimodel.*`` to the work tree; it comes
  after the normal path finder, so it would only serve what the wheel lacks. The test asserts
  that every ``ocimodel`` module loaded comes from the venv's site-packages, so a package left
  out of the wheel fails here instead of being silently served from the repository.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PREFECT_FOLDERS = ("tasks", "flows", "blocks")
# Not copied from the top of the repository: VCS, caches, build output, local state.
TOP_LEVEL_SKIP = {
    ".git",
    ".venv",
    "build",
    "dist",
    ".pytest_cache",
    ".ruff_cache",
    "quickstart-artifact",
    ".ocimodel-local",
}
TIMEOUT = 300

CHECK_SCRIPT = r"""
import importlib, importlib.metadata as md, json, pkgutil, sys, sysconfig

out = {"purelib": sysconfig.get_paths()["purelib"], "sys_path": sys.path}

top = {}
for name in ("tasks", "flows", "blocks"):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top[name] = None if exc.name == name else f"{type(exc).__name__}: {exc}"
    else:
        top[name] = f"imported from {getattr(module, '__file__', None)}"
out["top_level"] = top

errors = {}
for package in ("ocimodel", "ocimodel.tasks", "ocimodel.flows", "ocimodel.blocks"):
    try:
        module = importlib.import_module(package)
    except Exception as exc:
        errors[package] = f"{type(exc).__name__}: {exc}"
        continue
    if package == "ocimodel":
        continue
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            errors[info.name] = f"{type(exc).__name__}: {exc}"
out["import_errors"] = errors

from prefect.plugins import load_prefect_collections

collection = load_prefect_collections().get("ocimodel")
if collection is None or isinstance(collection, Exception):
    out["collection"] = repr(collection)
else:
    out["collection"] = {"name": collection.__name__, "file": collection.__file__}

dist = md.distribution("ocimodel")
out["dist_location"] = str(dist.locate_file(""))
out["dist_entry_points"] = [[ep.group, ep.name, ep.value] for ep in dist.entry_points]
out["modules"] = {
    name: getattr(module, "__file__", None)
    for name, module in sorted(sys.modules.items())
    if name == "ocimodel" or name.startswith("ocimodel.")
}
print("RESULT:" + json.dumps(out))
"""


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def _copy_source(dest: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".egg-info"))}
        if Path(folder).resolve() == REPO:
            skipped |= TOP_LEVEL_SKIP & set(names)
        return skipped

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("packaging")
    source = _copy_source(work / "source")
    dist = work / "dist"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(source)],
        env=_env(),
        cwd=work,
    )
    if build.returncode != 0:
        output = build.stdout + build.stderr
        if "No matching distribution found for" in output and "setuptools" in output:
            pytest.skip("the build backend (setuptools, wheel) cannot be fetched:\n" + output)
        pytest.fail(f"pip wheel failed:\n{output}", pytrace=False)
    [wheel] = dist.glob("ocimodel-*.whl")

    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    install = _run(
        [python, "-m", "pip", "install", "--no-deps", "--ignore-installed", "--no-index", wheel],
        env=_env(),
        cwd=work,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    outside = work / "elsewhere"
    outside.mkdir()
    check = _run([python, "-I", "-c", CHECK_SCRIPT], env=_env(), cwd=outside)
    lines = [line for line in check.stdout.splitlines() if line.startswith("RESULT:")]
    assert check.returncode == 0 and lines, check.stdout + check.stderr
    result = json.loads(lines[-1].removeprefix("RESULT:"))
    return {"source": source, "wheel": wheel, "venv": venv, "result": result}


def _site_packages(built: dict) -> Path:
    return Path(built["result"]["purelib"]).resolve()


def test_wheel_adds_only_the_ocimodel_top_level_name(built: dict) -> None:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        tops = {n.split("/", 1)[0] for n in names}
        dist_info = [t for t in tops if t.endswith(".dist-info")]
        assert len(dist_info) == 1, tops
        assert tops - set(dist_info) == {"ocimodel"}, tops
        top_level = f"{dist_info[0]}/top_level.txt"
        if top_level in names:
            assert wheel.read(top_level).decode().split() == ["ocimodel"]
    site = _site_packages(built)
    for folder in PREFECT_FOLDERS:
        assert not (site / folder).exists(), f"{folder}/ installed at the top of site-packages"
        installed = site / "ocimodel" / folder / "__init__.py"
        assert installed.is_file(), f"ocimodel.{folder} is not in the installed wheel"


def test_wheel_ships_every_source_file(built: dict) -> None:
    """Every file of the package folders (code and data) is in the wheel, at its mapped path."""
    source: Path = built["source"]
    roots = {"ocimodel": source / "ocimodel"} | {
        f"ocimodel/{f}": source / f for f in PREFECT_FOLDERS
    }
    expected = set()
    for prefix, folder in roots.items():
        for path in folder.rglob("*"):
            rel = path.relative_to(folder)
            if path.is_file() and not any(
                p.startswith(".") or p == "__pycache__" for p in rel.parts
            ):
                expected.add(f"{prefix}/{rel.as_posix()}")
    with zipfile.ZipFile(built["wheel"]) as wheel:
        shipped = set(wheel.namelist())
    missing = sorted(expected - shipped)
    assert not missing, (
        "source files missing from the wheel (list the package in [tool.setuptools] packages, "
        f"or the data file in package-data): {missing}"
    )


def test_wheel_declares_the_prefect_collection(built: dict) -> None:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        [entry_points] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(wheel.read(entry_points).decode())
    assert dict(parser["prefect.collections"]) == {"ocimodel": "ocimodel.blocks"}


def test_generic_top_level_names_are_not_importable(built: dict) -> None:
    top = built["result"]["top_level"]
    assert top == {"tasks": None, "flows": None, "blocks": None}, top


def test_prefect_packages_import_from_the_installed_wheel(built: dict) -> None:
    result = built["result"]
    assert not result["import_errors"], result["import_errors"]
    site = _site_packages(built)
    modules = result["modules"]
    for name in ("ocimodel", "ocimodel.tasks", "ocimodel.flows", "ocimodel.blocks"):
        assert name in modules, f"{name} was not imported"
    elsewhere = {
        name: path
        for name, path in modules.items()
        if path is None or not Path(path).resolve().is_relative_to(site)
    }
    assert not elsewhere, (
        f"modules not loaded from the venv's site-packages {site} (missing from the wheel and "
        f"served by the editable install of the work tree?): {elsewhere}"
    )
    assert str(REPO) not in result["sys_path"]


def test_prefect_collection_entry_point_resolves_to_installed_blocks(built: dict) -> None:
    result = built["result"]
    site = _site_packages(built)
    assert Path(result["dist_location"]).resolve() == site
    assert ["prefect.collections", "ocimodel", "ocimodel.blocks"] in result["dist_entry_points"]
    collection = result["collection"]
    assert isinstance(collection, dict), f"prefect could not load the collection: {collection}"
    assert collection["name"] == "ocimodel.blocks"
    assert Path(collection["file"]).resolve() == site / "ocimodel" / "blocks" / "__init__.py"
