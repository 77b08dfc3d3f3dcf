"""The prepare pipeline's core steps: model file, runtime.yaml, schemas and the git check of
the artifact folder and the training script; forced re-prepares replace, restore or remove
only the files prepare recorded."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from prepare_support import MY_PACK, OK_ENV
from prepare_support import is_empty as _is_empty

from ocimodel import GenericModel, OcimodelError
from ocimodel.artifact.manifest import write_manifest
from ocimodel.errors import ArtifactFileExistsError
from ocimodel.layout import MANIFEST_NAME
from ocimodel.metadata import ChangesNotCommitted
from ocimodel.metadata.prepared import populate_metadata
from ocimodel.pipeline import prepare_artifact
from ocimodel.runtime import build_runtime_info, generate_runtime_yaml
from ocimodel.schema import (
    INPUT_SCHEMA_FILE_NAME,
    SCHEMA_MAX_BYTES,
    SchemaSizeWarning,
    populate_schema,
)
from ocimodel.serialize import serialize_model


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


def test_dirty_training_script_fails_prepare_unless_ignored(iris, offline, tmp_path):
    from ocimodel import ChangesNotCommitted

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    script = repo / "train.py"
    script.write_text("print('train')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "init")
    script.write_text("print('train, edited')\n")

    folder = tmp_path / "art"
    model = GenericModel(iris[0], artifact_dir=str(folder))
    with pytest.raises(ChangesNotCommitted, match="train.py") as info:
        model.prepare(training_script_path=str(script), ignore_pending_changes=False, **OK_ENV)
    assert isinstance(info.value, OcimodelError)
    assert "commit" in str(info.value).lower()
    assert _is_empty(folder)
    model.prepare(training_script_path=str(script), **OK_ENV)  # the reference's default ignores
    assert model.metadata_provenance.git_branch == "main"
    assert model.metadata_provenance.training_script_path == str(script)


class _Locked:
    """A model cloudpickle cannot write (it holds a lock)."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()


def _wide(columns=300):
    return pd.DataFrame(
        np.arange(4 * columns, dtype=float).reshape(4, columns),
        columns=[f"c{i}" for i in range(columns)],
    )


def test_prepare_keeps_a_different_schema_file_unless_forced(tmp_path):
    from ocimodel.generic_model import GenericModel

    folder = tmp_path / "art"
    folder.mkdir()
    mine = folder / INPUT_SCHEMA_FILE_NAME
    mine.write_text('{"schema": [], "version": "mine"}')
    model = GenericModel({"w": 1}, artifact_dir=str(folder))
    kwargs = dict(X_sample=_wide(), inference_conda_env=MY_PACK, inference_python_version="3.11")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ArtifactFileExistsError, match=re.escape(str(mine))) as caught:
            model.prepare(**kwargs)
        assert "force_overwrite=True" in str(caught.value)
        assert mine.read_text() == '{"schema": [], "version": "mine"}'
        assert sorted(os.listdir(folder)) == [INPUT_SCHEMA_FILE_NAME]  # nothing half-done
        model.prepare(force_overwrite=True, **kwargs)
        written = mine.read_bytes()
        assert [a["name"] for a in json.loads(written)["schema"]][:2] == ["c0", "c1"]
        model.prepare(**kwargs)  # same inputs, same bytes: converges without force
    assert mine.read_bytes() == written


def test_failed_forced_prepare_restores_the_files_it_replaced(tmp_path):
    folder = str(tmp_path)
    prepare_artifact({"w": 1}, folder, inference_conda_env=MY_PACK, inference_python_version="3.11")
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    with pytest.raises(TypeError, match="lock"):
        prepare_artifact(
            _Locked(),
            folder,
            inference_conda_env=MY_PACK,
            inference_python_version="3.10",
            force_overwrite=True,
        )
    after = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert after == before  # runtime.yaml (3.10) was written, then put back


def test_forced_prepare_under_a_new_model_file_name_removes_the_recorded_old_one(
    iris, offline, tmp_path, caplog
):
    from ocimodel.metadata.prepared import read_metadata

    estimator, _, _ = iris
    folder = tmp_path / "art"
    GenericModel(estimator, artifact_dir=str(folder)).prepare(**OK_ENV)
    (folder / "notes.pkl").write_bytes(b"the user's, not recorded by prepare")
    with caplog.at_level(logging.WARNING, logger="ocimodel.pipeline"):
        GenericModel(estimator, artifact_dir=str(folder)).prepare(
            model_file_name="other.pkl", force_overwrite=True, **OK_ENV
        )
    files = set(os.listdir(folder))
    assert "other.pkl" in files and "model.pkl" not in files
    assert "notes.pkl" in files  # never guessed from the extension
    assert "Removed model.pkl" in caplog.text and "other.pkl" in caplog.text
    custom = read_metadata(str(folder)).custom
    assert custom["ModelFileName"].value == "other.pkl"


def test_model_conflict_found_last_restores_the_metadata_file(tmp_path):
    from ocimodel.layout import METADATA_FILE

    folder = str(tmp_path)
    common = dict(inference_conda_env=MY_PACK, inference_python_version="3.11")
    prepare_artifact({"w": 1}, folder, use_case_type="regression", **common)
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    with pytest.raises(ArtifactFileExistsError, match="model.pkl"):
        prepare_artifact({"w": 2}, folder, use_case_type="other", **common)
    assert b"other" not in (tmp_path / METADATA_FILE).read_bytes()
    after = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert after == before


def test_missing_training_script_is_a_typed_error_before_anything_is_written(tmp_path):
    from ocimodel.errors import PrepareError, TrainingScriptNotFoundError

    folder = tmp_path / "art"
    missing = tmp_path / "nope" / "train.py"
    with pytest.raises(TrainingScriptNotFoundError, match=re.escape(repr(str(missing)))) as caught:
        prepare_artifact(
            {"w": 1},
            str(folder),
            inference_conda_env=MY_PACK,
            inference_python_version="3.11",
            training_script_path=str(missing),
        )
    assert isinstance(caught.value, PrepareError)
    assert "leave training_script_path out" in str(caught.value)
    assert not folder.exists()
    with pytest.raises(TrainingScriptNotFoundError):
        populate_metadata(None, str(tmp_path), training_script_path=str(missing))
    script = tmp_path / "train.py"
    script.write_text("print('train')\n")
    md = populate_metadata(None, str(tmp_path), training_script_path=str(script))
    assert md.provenance.training_script_path == str(script)


def test_metadata_at_the_budget_limit_still_fits_after_introspection(tmp_path):
    """A prepare at exactly 32,000 budget bytes can always record its introspection results."""
    from ocimodel.introspect import introspect_artifact
    from ocimodel.metadata import METADATA_SIZE_LIMIT, catalog_metadata_size

    (tmp_path / "score.py").write_text("def predict(x, y):\n    return x\n")  # checks fail
    prepared = prepare_artifact(
        {"w": 1},
        str(tmp_path),
        inference_conda_env=MY_PACK,
        inference_python_version="3.11",
        force_overwrite=False,
        score_py_uri=str(tmp_path / "score.py"),
    )
    md = prepared.metadata
    custom, taxonomy = md.custom, md.taxonomy
    n = 0
    while (room := METADATA_SIZE_LIMIT - custom.budget_size()) > 320:
        custom.add(f"fill{n:04d}", "v" * min(255, room - 250))
        n += 1
    custom.add("last", "v")
    room = METADATA_SIZE_LIMIT - custom.budget_size()
    custom.add("last", "v" * (1 + room), replace=True)
    assert custom.budget_size() == METADATA_SIZE_LIMIT
    with pytest.raises(ValueError, match="ArtifactTestResults"):
        custom.add("one_more", "x")
    intro = introspect_artifact(str(tmp_path), check_remote=False, metadata=md)
    assert intro.failures >= 2  # long failure messages are recorded
    assert taxonomy["ArtifactTestResults"].value == intro.to_dict()
    assert catalog_metadata_size(custom, taxonomy) <= METADATA_SIZE_LIMIT


def test_artifact_rollback_restores_small_files_and_removes_what_was_added(tmp_path):
    from ocimodel.pipeline import artifact_rollback

    folder = tmp_path / "art"
    folder.mkdir()
    (folder / "score.py").write_bytes(b"old score")
    (folder / "model.pkl").write_bytes(b"old model")
    with pytest.raises(RuntimeError, match="boom"):
        with artifact_rollback(str(folder)) as snapshot:
            assert "model.pkl" not in snapshot.files  # the model is never copied
            (folder / "score.py").write_bytes(b"new score")
            (folder / "runtime.yaml").write_bytes(b"new")
            (folder / "sub").mkdir()
            (folder / "sub" / "x").write_bytes(b"x")
            raise RuntimeError("boom")
    assert sorted(os.listdir(folder)) == ["model.pkl", "score.py"]
    assert (folder / "score.py").read_bytes() == b"old score"
    fresh = tmp_path / "fresh" / "art"
    with pytest.raises(RuntimeError):
        with artifact_rollback(str(fresh)):
            (fresh / "runtime.yaml").write_bytes(b"new")
            raise RuntimeError("boom")
    assert not fresh.exists()
    with artifact_rollback(str(fresh)):
        (fresh / "runtime.yaml").write_bytes(b"kept")
    assert (fresh / "runtime.yaml").read_bytes() == b"kept"  # success keeps everything
