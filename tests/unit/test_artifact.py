"""ModelArtifact: runtime.yaml preparation, manifest, zipping and from_uri."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import zipfile

import pytest
import yaml
from prepare_support import MY_PACK, OK_ENV
from prepare_support import is_empty as _is_empty

from ocimodel import GenericModel, conda
from ocimodel.artifact import ModelArtifact
from ocimodel.artifact.archive import ArchiveFormatError
from ocimodel.artifact.manifest import ManifestError, read_manifest
from ocimodel.errors import (
    AritfactFolderStructureError,
    ArtifactFileExistsError,
    ArtifactInputError,
    ArtifactNestedFolderError,
    ArtifactRequiredFilesError,
    ArtifactsNotAvailableError,
    ArtifactSourceNotFoundError,
    CondaEnvError,
    RuntimeYamlError,
    UnsafeArchiveError,
)
from ocimodel.layout import MANIFEST_NAME
from ocimodel.runtime import read_runtime_yaml

PACK = "oci://service-conda-packs@id19sfcrra6z/service_pack/cpu/GeneralML/1.0/generalml_p311_cpu_v1"


@pytest.fixture(autouse=True)
def index_file(tmp_path_factory, monkeypatch):
    """Conda resolution reads this local index instead of the OCI bucket."""
    path = tmp_path_factory.mktemp("index") / "index.json"
    path.write_text(
        json.dumps(
            [
                {"slug": "generalml_p311_cpu_v1", "pack_path": PACK, "python": "3.11"},
                {"slug": "nopython_v1", "pack_path": PACK + "x"},
            ]
        )
    )
    monkeypatch.setenv(conda.ENV_INDEX_URI, str(path))
    for name in ("PROJECT_OCID", "NB_SESSION_OCID", "JOB_RUN_OCID"):
        monkeypatch.delenv(name, raising=False)
    return path


def _env(art: ModelArtifact) -> dict:
    return yaml.safe_load(open(art.path("runtime.yaml")))


def test_artifact_dir_is_required(tmp_path):
    with pytest.raises(ArtifactInputError, match="artifact_dir is ''"):
        ModelArtifact("")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactInputError, match="is a file"):
        ModelArtifact(str(tmp_path / "file"))


def test_slug_resolves_to_service_pack(tmp_path, monkeypatch):
    monkeypatch.setenv("PROJECT_OCID", "ocid1.datascienceproject.oc1..p")
    art = ModelArtifact(str(tmp_path / "art"), model_file_name="model.pkl")
    info = art.prepare_runtime_yaml("generalml_p311_cpu_v1")
    doc = _env(art)
    assert doc["MODEL_ARTIFACT_VERSION"] == "3.0"
    assert doc["MODEL_DEPLOYMENT"]["INFERENCE_CONDA_ENV"] == {
        "INFERENCE_ENV_PATH": PACK,
        "INFERENCE_ENV_SLUG": "generalml_p311_cpu_v1",
        "INFERENCE_ENV_TYPE": "data_science",
        "INFERENCE_PYTHON_VERSION": "3.11",
    }
    prov = doc["MODEL_PROVENANCE"]
    assert prov["TRAINING_CONDA_ENV"]["TRAINING_ENV_SLUG"] == "generalml_p311_cpu_v1"
    assert prov["TRAINING_CONDA_ENV"]["TRAINING_PYTHON_VERSION"] == "3.11"
    assert prov["TRAINING_CODE"]["ARTIFACT_DIRECTORY"] == art.artifact_dir
    assert prov["PROJECT_OCID"] == "ocid1.datascienceproject.oc1..p"
    assert read_runtime_yaml(art.artifact_dir) == info == art.runtime_info
    assert os.path.isfile(art.path(".model-ignore"))


def test_published_path_with_training_env(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"))
    art.prepare_runtime_yaml(
        MY_PACK,
        inference_python_version="3.10",
        training_conda_env="generalml_p311_cpu_v1",
        provenance={"TRAINING_RESOURCE_OCID": "ocid1.datasciencejob.oc1..j"},
    )
    doc = _env(art)
    env = doc["MODEL_DEPLOYMENT"]["INFERENCE_CONDA_ENV"]
    assert (env["INFERENCE_ENV_TYPE"], env["INFERENCE_ENV_SLUG"]) == ("published", "mine_v1")
    assert env["INFERENCE_PYTHON_VERSION"] == "3.10"
    train = doc["MODEL_PROVENANCE"]["TRAINING_CONDA_ENV"]
    assert (train["TRAINING_ENV_TYPE"], train["TRAINING_ENV_PATH"]) == ("data_science", PACK)
    assert doc["MODEL_PROVENANCE"]["TRAINING_RESOURCE_OCID"] == "ocid1.datasciencejob.oc1..j"
    with pytest.raises(ArtifactInputError, match="Unknown provenance keys \\['BOGUS'\\]"):
        art.prepare_runtime_yaml(MY_PACK, "3.10", force_overwrite=True, provenance={"BOGUS": "x"})


@pytest.mark.parametrize("ignore", [False, True])
def test_missing_python_version_fails_at_prepare(tmp_path, ignore):
    art = ModelArtifact(str(tmp_path / "art"))
    with pytest.raises(CondaEnvError, match="inference_python_version='3.11'"):
        art.prepare_runtime_yaml(MY_PACK, ignore_conda_error=ignore)
    with pytest.raises(CondaEnvError, match=re.escape(repr(MY_PACK))):
        art.prepare_runtime_yaml(MY_PACK, ignore_conda_error=ignore)
    with pytest.raises(CondaEnvError, match="No python version"):
        art.prepare_runtime_yaml("nopython_v1", ignore_conda_error=ignore)
    assert not os.path.exists(art.path("runtime.yaml"))


def test_unknown_slug_fails_unless_ignored(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"))
    with pytest.raises(CondaEnvError, match="'nope_v1'.*ignore_conda_error=True"):
        art.prepare_runtime_yaml("nope_v1")
    assert not os.path.exists(art.path("runtime.yaml"))
    art.prepare_runtime_yaml("nope_v1", inference_python_version="3.11", ignore_conda_error=True)
    env = read_runtime_yaml(art.artifact_dir).model_deployment.inference_conda_env
    assert (env.inference_env_slug, env.inference_env_path, env.inference_env_type) == (
        "nope_v1",
        "",
        "",
    )
    assert env.inference_python_version == "3.11"


def test_no_conda_env_needs_ignore_conda_error(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"), ignore_conda_error=True)
    info = art.prepare_runtime_yaml(None)
    assert info.model_deployment.inference_conda_env.inference_env_path == ""
    strict = ModelArtifact(str(tmp_path / "strict"))
    with pytest.raises(CondaEnvError, match="inference_conda_env is empty"):
        strict.prepare_runtime_yaml(None)


def test_unreadable_index_is_typed_and_ignorable(tmp_path, monkeypatch):
    monkeypatch.setenv(conda.ENV_INDEX_URI, str(tmp_path / "absent.json"))
    art = ModelArtifact(str(tmp_path / "art"))
    with pytest.raises(CondaEnvError, match="could not be read"):
        art.prepare_runtime_yaml("generalml_p311_cpu_v1")
    art.prepare_runtime_yaml("generalml_p311_cpu_v1", "3.11", ignore_conda_error=True)
    assert read_runtime_yaml(
        art.artifact_dir
    ).model_deployment.inference_conda_env.inference_env_slug == ("generalml_p311_cpu_v1")


def test_runtime_yaml_is_not_replaced_without_force(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"))
    art.prepare_runtime_yaml(MY_PACK, "3.10")
    before = open(art.path("runtime.yaml")).read()
    with pytest.raises(ArtifactFileExistsError, match="force_overwrite=True"):
        art.prepare_runtime_yaml(MY_PACK, "3.11")
    assert open(art.path("runtime.yaml")).read() == before
    art.prepare_runtime_yaml(MY_PACK, "3.11", force_overwrite=True)
    assert "'3.11'" in open(art.path("runtime.yaml")).read()


def test_prepare_score_py_needs_a_model_file_name(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"))
    with pytest.raises(ArtifactInputError, match="model_file_name='model.pkl'"):
        art.prepare_score_py()


def test_score_py_renders_and_reloads_the_model(tmp_path):
    import cloudpickle

    art = ModelArtifact(str(tmp_path / "art"), model_file_name="model.pkl")
    with open(art.path("model.pkl"), "wb") as fh:
        cloudpickle.dump({"weights": [1, 2, 3]}, fh)
    art.write_manifest()
    path = art.prepare_score_py()
    text = open(path).read()
    assert "model.pkl" in text
    assert art.prepare_score_py() == path  # the same content converges
    with pytest.raises(ArtifactFileExistsError):
        art.prepare_score_py(model_save_serializer="joblib")
    assert open(path).read() == text
    art.prepare_runtime_yaml(MY_PACK, "3.11")
    art.reload()
    assert art.model == {"weights": [1, 2, 3]}
    assert callable(art.score.predict)
    fresh = ModelArtifact(str(tmp_path / "fresh"))
    with pytest.raises(ArtifactsNotAvailableError, match="run prepare"):
        fresh.reload()


def test_write_schema_and_prepare_schema(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"))
    art.write_schema({"schema": [{"name": "a"}]}, "input")
    assert json.load(open(art.path("input_schema.json"))) == {"schema": [{"name": "a"}]}
    with pytest.raises(ArtifactFileExistsError):
        art.write_schema({"schema": []}, "input")
    with pytest.raises(ArtifactInputError, match="'middle'"):
        art.write_schema({}, "middle")
    with pytest.raises(ArtifactSourceNotFoundError, match="'nope.json'"):
        art.prepare_schema("nope.json")
    src = tmp_path / "custom_schema.json"
    src.write_text("{}")
    assert art.prepare_schema(str(src)) == art.path("custom_schema.json")


def test_manifest_uses_known_digest_and_verifies(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"), model_file_name="model.pkl")
    (tmp_path / "art" / "model.pkl").write_bytes(b"weights")
    real = hashlib.sha256(b"weights").hexdigest()
    fake = "0" * 64
    doc = art.write_manifest({"model.pkl": fake})
    # The given digest is trusted as is: the file was not re-read.
    assert doc == {"version": 1, "files": {"model.pkl": {"sha256": fake, "size": 7}}}
    assert read_manifest(art.artifact_dir) == doc
    with pytest.raises(ManifestError, match="not a 64-character"):
        art.write_manifest({"model.pkl": "abc"})
    assert read_manifest(art.artifact_dir) == doc
    with pytest.raises(ManifestError, match="model.pkl: sha256"):
        art.verify_manifest()
    art.write_manifest()
    assert read_manifest(art.artifact_dir)["files"]["model.pkl"]["sha256"] == real
    assert art.verify_manifest() == ["model.pkl"]
    (tmp_path / "art" / "model.pkl").write_bytes(b"weightz")
    with pytest.raises(ManifestError, match="model.pkl: sha256"):
        art.verify_manifest()
    os.unlink(art.path("model.pkl"))
    with pytest.raises(ManifestError, match="model.pkl: missing"):
        art.verify_manifest()


def _make_source(root, nested: str | None = None, model=b"weights", drop=()):
    """A complete artifact folder (optionally inside one nested folder)."""
    base = root / nested if nested else root
    art = ModelArtifact(str(base), model_file_name="model.pkl")
    art.prepare_runtime_yaml(MY_PACK, "3.11")
    files = {"score.py": b"def load_model():\n    return 42\n", "model.pkl": model}
    for name, data in files.items():
        (base / name).write_bytes(data)
    art.write_manifest()
    for name in drop:
        os.unlink(base / name)
    return base


def _zip_dir(src, dest):
    with zipfile.ZipFile(dest, "w") as zf:
        for dirpath, _dirs, files in os.walk(src):
            for f in files:
                full = os.path.join(dirpath, f)
                zf.write(full, os.path.relpath(full, src))
    return str(dest)


def _tar_dir(src, dest, mode="w:gz"):
    with tarfile.open(dest, mode) as tf:
        for name in sorted(os.listdir(src)):
            tf.add(os.path.join(src, name), name)
    return str(dest)


@pytest.mark.parametrize("kind", ["folder", "zip", "tar.gz", "tar"])
def test_from_uri_local_sources(tmp_path, kind):
    src = _make_source(tmp_path / "src")
    uri = {
        "folder": lambda: "file://" + str(src),
        "zip": lambda: _zip_dir(src, tmp_path / "a.zip"),
        "tar.gz": lambda: _tar_dir(src, tmp_path / "a.tar.gz"),
        "tar": lambda: _tar_dir(src, tmp_path / "a.tar", "w"),
    }[kind]()
    art = ModelArtifact.from_uri(uri, str(tmp_path / "dest"), reload=True)
    assert art.model_file_name == "model.pkl"
    assert art.model == 42
    assert art.verify_manifest(required=True) == ["model.pkl"]
    assert art.runtime_info.model_deployment.inference_conda_env.inference_env_path == MY_PACK
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".ocimodel-stage-")]
    assert leftovers == []


def test_from_uri_same_folder_and_missing_sources(tmp_path):
    src = _make_source(tmp_path / "src")
    art = ModelArtifact.from_uri(str(src), str(src))
    assert art.artifact_dir == str(src) and art.runtime_info is not None
    with pytest.raises(ArtifactSourceNotFoundError, match="does not exist"):
        ModelArtifact.from_uri(str(tmp_path / "ghost"), str(tmp_path / "ghost"))
    with pytest.raises(ArtifactSourceNotFoundError, match="ghost.zip"):
        ModelArtifact.from_uri(str(tmp_path / "ghost.zip"), str(tmp_path / "d"))
    with pytest.raises(ArtifactInputError, match="artifact_dir is empty"):
        ModelArtifact.from_uri(str(src), "")
    with pytest.raises(ArtifactInputError, match="uri is ''"):
        ModelArtifact.from_uri("", str(tmp_path / "d"))
    other = tmp_path / "model.bin"
    other.write_bytes(b"x")
    with pytest.raises(ArchiveFormatError, match="neither a folder nor"):
        ModelArtifact.from_uri(str(other), str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()


def test_from_uri_structure_errors(tmp_path):
    nested = _make_source(tmp_path / "n", nested="inner")
    with pytest.raises(ArtifactNestedFolderError, match="'inner'"):
        ModelArtifact.from_uri(_zip_dir(nested.parent, tmp_path / "n.zip"), str(tmp_path / "d1"))
    partial = _make_source(tmp_path / "p", drop=("runtime.yaml",))
    with pytest.raises(ArtifactRequiredFilesError, match="runtime.yaml"):
        ModelArtifact.from_uri(str(partial), str(tmp_path / "d2"))
    with pytest.raises(ArtifactRequiredFilesError, match="other.pkl"):
        ModelArtifact.from_uri(
            str(_make_source(tmp_path / "q")), str(tmp_path / "d3"), model_file_name="other.pkl"
        )
    deep = _make_source(tmp_path / "s", nested="sub", drop=())
    (tmp_path / "s" / "README.md").write_text("top-level file beside the sub-folder")
    with pytest.raises(AritfactFolderStructureError, match="top level"):
        ModelArtifact.from_uri(str(deep.parent), str(tmp_path / "d4"))
    for d in ("d1", "d2", "d3", "d4"):
        assert not (tmp_path / d).exists() or os.listdir(tmp_path / d) == []


def _prepared(folder):
    GenericModel(lambda x: x, artifact_dir=str(folder)).prepare(**OK_ENV, ignore_conda_error=True)
    return folder


def test_tar_gz_nested_folder_and_missing_files_raise_the_reference_errors(offline, tmp_path):
    src = _prepared(tmp_path / "src")
    nested = tmp_path / "nested.tar.gz"
    with tarfile.open(nested, "w:gz") as tf:
        tf.add(src, "inner")
    with pytest.raises(ArtifactNestedFolderError, match="'inner'"):
        ModelArtifact.from_uri(str(nested), str(tmp_path / "d1"))
    assert _is_empty(tmp_path / "d1")
    partial = tmp_path / "partial.tar.gz"
    with tarfile.open(partial, "w:gz") as tf:
        for name in os.listdir(src):
            if name != "score.py":
                tf.add(src / name, name)
    with pytest.raises(ArtifactRequiredFilesError, match="score.py"):
        ModelArtifact.from_uri(str(partial), str(tmp_path / "d2"))
    assert _is_empty(tmp_path / "d2")


def test_from_uri_invalid_runtime_yaml_leaves_target_untouched(tmp_path):
    src = _make_source(tmp_path / "src")
    (src / "runtime.yaml").write_text("MODEL_ARTIFACT_VERSION: '1.0'\n")
    with pytest.raises(RuntimeYamlError, match="MODEL_ARTIFACT_VERSION is '1.0'"):
        ModelArtifact.from_uri(str(src), str(tmp_path / "dest"))
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []


def test_from_uri_unsafe_archive_is_refused(tmp_path):
    src = _make_source(tmp_path / "src")
    archive = _zip_dir(src, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../escaped.txt", b"x")
    with pytest.raises(UnsafeArchiveError, match="escapes the target"):
        ModelArtifact.from_uri(archive, str(tmp_path / "dest"))
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []


def test_from_uri_never_silently_overwrites(tmp_path):
    src = _make_source(tmp_path / "src", model=b"new weights")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "model.pkl").write_bytes(b"old weights")
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactFileExistsError, match="model.pkl"):
        ModelArtifact.from_uri(str(src), str(dest))
    assert sorted(os.listdir(dest)) == ["model.pkl", "notes.txt"]
    assert (dest / "model.pkl").read_bytes() == b"old weights"
    art = ModelArtifact.from_uri(str(src), str(dest), force_overwrite=True)
    assert (dest / "model.pkl").read_bytes() == b"new weights"
    assert (dest / "notes.txt").read_text() == "mine"
    assert art.verify_manifest(required=True) == ["model.pkl"]


def test_stale_manifest_is_removed_on_forced_overwrite(tmp_path):
    src = _make_source(tmp_path / "src")
    os.unlink(src / MANIFEST_NAME)
    dest = _make_source(tmp_path / "dest", model=b"other")
    ModelArtifact.from_uri(str(src), str(dest), force_overwrite=True)
    assert not (dest / MANIFEST_NAME).exists()


def test_zip_honours_model_ignore(tmp_path):
    src = _make_source(tmp_path / "art")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"c")
    (src / "scratch.log").write_text("l")
    with open(src / ".model-ignore", "a") as fh:
        fh.write("*.log\n")
    art = ModelArtifact(str(src), model_file_name="model.pkl")
    path = art.zip()
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
    assert names == [".model-ignore", "model.pkl", MANIFEST_NAME, "runtime.yaml", "score.py"]
    back = ModelArtifact.from_uri(path, str(tmp_path / "back"))
    assert back.verify_manifest(required=True) == ["model.pkl"]
    empty = ModelArtifact(str(tmp_path / "empty"))
    with pytest.raises(ArtifactRequiredFilesError, match="score.py, runtime.yaml"):
        empty.zip()


@pytest.mark.parametrize("link_kind", ["file", "folder"])
def test_symlinks_in_folder_sources_are_refused_by_from_uri_and_zip(tmp_path, link_kind):
    from ocimodel.errors import UnsafeArchiveError

    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("not for the artifact")
    src = _make_source(tmp_path / "src")
    link = src / ("leak.txt" if link_kind == "file" else "leakdir")
    os.symlink(secret if link_kind == "file" else outside, link)
    dst = tmp_path / "dst"
    with pytest.raises(UnsafeArchiveError) as caught:
        ModelArtifact.from_uri(str(src), str(dst))
    message = str(caught.value)
    assert str(link) in message and "real file" in message
    assert str(secret if link_kind == "file" else outside) in message
    assert not dst.exists()
    assert sorted(os.listdir(tmp_path)) == ["outside", "src"]
    with pytest.raises(UnsafeArchiveError, match=re.escape(str(link))):
        ModelArtifact(str(src), model_file_name="model.pkl").zip(str(tmp_path / "out.zip"))
    assert sorted(os.listdir(tmp_path)) == ["outside", "src"]


def test_the_manifest_covers_the_recorded_model_file_beside_other_model_like_files(tmp_path):
    import zipfile

    from ocimodel.artifact.archive import make_zip
    from ocimodel.artifact.uploader import manifest_files
    from ocimodel.pipeline import prepare_artifact

    folder = tmp_path / "art"
    prepare_artifact(
        {"w": 1},
        str(folder),
        inference_conda_env="oci://bucket@namespace/conda/pack",
        inference_python_version="3.11",
    )
    (folder / "tokenizer.bin").write_bytes(b"\0" * 64)  # model-like by its suffix
    assert manifest_files(str(folder)) == ["model.pkl"]
    zipped = make_zip(
        str(folder), str(tmp_path / "a.zip"), manifest_files=manifest_files(str(folder))
    )
    assert "model.pkl" in zipfile.ZipFile(zipped).read("ocimodel-manifest.json").decode()
