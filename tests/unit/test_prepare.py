"""The prepare pipeline's core steps: model file, runtime.yaml, schemas and the git check."""

from __future__ import annotations

import json
import os
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from ocimodel.artifact import build_runtime_info
from ocimodel.manifest import MANIFEST_NAME, write_manifest
from ocimodel.metadata import ChangesNotCommitted
from ocimodel.prepare import (
    generate_runtime_yaml,
    populate_metadata,
    populate_schema,
    prepare_artifact,
    serialize_model,
)
from ocimodel.runtime import ArtifactFileExistsError
from ocimodel.schema import INPUT_SCHEMA_FILE_NAME, SCHEMA_MAX_BYTES, SchemaSizeWarning

MY_PACK = "oci://my-packs@myns/conda_environments/cpu/mine/1.0/mine_v1"


def test_serialize_writes_no_manifest_and_a_new_model_discards_a_stale_one(tmp_path):
    first = serialize_model({"w": 1}, str(tmp_path))
    assert (first.file_name, first.written) == ("model.pkl", True)
    assert first.size == os.path.getsize(tmp_path / "model.pkl")
    assert not (tmp_path / MANIFEST_NAME).exists()
    write_manifest(str(tmp_path), ["model.pkl"])
    assert serialize_model({"w": 1}, str(tmp_path)).written is False
    assert (tmp_path / MANIFEST_NAME).exists()  # same bytes: the manifest still holds
    with pytest.raises(ArtifactFileExistsError):
        serialize_model({"w": 2}, str(tmp_path))
    assert (tmp_path / MANIFEST_NAME).exists()
    assert serialize_model({"w": 2}, str(tmp_path), force_overwrite=True).written
    assert not (tmp_path / MANIFEST_NAME).exists()  # it described the old bytes
    assert sorted(os.listdir(tmp_path)) == ["model.pkl"]


def test_runtime_yaml_is_built_without_writing_and_written_only_when_allowed(tmp_path):
    folder = tmp_path / "art"
    folder.mkdir()
    info = build_runtime_info(str(folder), MY_PACK, inference_python_version="3.10")
    assert info.model_deployment.inference_conda_env.inference_env_path == MY_PACK
    assert os.listdir(folder) == []
    generate_runtime_yaml(str(folder), inference_conda_env=MY_PACK, inference_python_version="3.10")
    written = (folder / "runtime.yaml").read_bytes()
    assert written == info.to_yaml().encode("utf-8")
    generate_runtime_yaml(str(folder), inference_conda_env=MY_PACK, inference_python_version="3.10")
    with pytest.raises(ArtifactFileExistsError, match="force_overwrite=True"):
        generate_runtime_yaml(
            str(folder), inference_conda_env=MY_PACK, inference_python_version="3.11"
        )
    assert (folder / "runtime.yaml").read_bytes() == written
    generate_runtime_yaml(
        str(folder),
        inference_conda_env=MY_PACK,
        inference_python_version="3.11",
        force_overwrite=True,
    )
    assert "'3.11'" in (folder / "runtime.yaml").read_text()


def test_oversize_schema_stays_a_file_and_out_of_the_catalog_metadata(tmp_path):
    wide = pd.DataFrame(
        np.arange(5 * 600, dtype=float).reshape(5, 600), columns=[f"col{i}" for i in range(600)]
    )
    small = pd.Series([0, 1, 1, 0, 1], name="label")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        md = populate_metadata(None, str(tmp_path), X_sample=wide, y_sample=small)
    assert [w.category for w in caught if w.category is SchemaSizeWarning] == [SchemaSizeWarning]
    assert md.schema_input.size() > SCHEMA_MAX_BYTES
    stored = json.loads((tmp_path / INPUT_SCHEMA_FILE_NAME).read_text())
    assert [a["name"] for a in stored["schema"]] == list(wide.columns)
    schema_in, schema_out = md.catalog_schemas()
    assert schema_in is None
    assert json.loads(schema_out)["schema"][0]["name"] == "label"
    assert not (tmp_path / "output_schema.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        narrow, _ = populate_schema(wide.iloc[:, :3], artifact_dir=str(tmp_path / "b"))
    assert narrow.keys == ["col0", "col1", "col2"]


def _git(repo, *args):
    subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"},
    )  # fmt: skip


def test_pending_changes_in_the_artifact_folder_repo_fail_unless_ignored(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "art").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "art" / "notes.txt").write_text("committed\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder is not in the artifact's repository
    folder = str(repo / "art")
    populate_metadata(None, folder, ignore_pending_changes=False)  # all committed
    (repo / "art" / "notes.txt").write_text("changed\n")
    with pytest.raises(ChangesNotCommitted, match="notes.txt"):
        populate_metadata(None, folder, ignore_pending_changes=False)
    populate_metadata(None, folder, ignore_pending_changes=True)
    with pytest.raises(ChangesNotCommitted):
        prepare_artifact(
            {"w": 1},
            folder,
            inference_conda_env=MY_PACK,
            inference_python_version="3.11",
            ignore_pending_changes=False,
        )
    assert sorted(os.listdir(folder)) == ["notes.txt"]  # the failed prepare left nothing
