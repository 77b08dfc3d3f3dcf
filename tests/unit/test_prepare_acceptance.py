"""Acceptance checks of the prepare stage that cut across modules: the reference's Toy example
verbatim, the public API and signatures, conda index overrides, bad inputs entering through
``GenericModel.prepare`` (typed, nothing left behind), task retry policy and task logging."""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import subprocess
import tarfile
import uuid

import numpy as np
import oci
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ocimodel
from ocimodel import (
    TEST_STATUS,
    ArtifactNestedFolderError,
    ArtifactRequiredFilesError,
    GenericModel,
    MetadataSizeTooLarge,
    ModelArtifact,
    OcimodelError,
    RuntimeYamlError,
)
from ocimodel.errors import CondaEnvError

PACK = "oci://my-bucket@my-namespace/conda/my_pack_p311"
OK_ENV = dict(inference_conda_env=PACK, inference_python_version="3.11")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    return model, X, y


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No OCI config at all: object storage is unreachable."""
    monkeypatch.setenv("OCI_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.delenv("OCIMODEL_SERVICE_ENDPOINT", raising=False)


@pytest.fixture
def local_env(local_oci, monkeypatch):
    """Default auth points at the local OCI service."""
    for key, value in local_oci.env().items():
        monkeypatch.setenv(key, value)
    for key in ("CONDA_BUCKET_NS", "CONDA_BUCKET_NAME", "OCIMODEL_CONDA_INDEX_URI"):
        monkeypatch.delenv(key, raising=False)
    from ocimodel.oci import auth as oci_auth

    oci_auth.reset_auth()
    yield local_oci
    oci_auth.reset_auth()


def _is_empty(folder) -> bool:
    return not os.path.exists(folder) or os.listdir(folder) == []


# --- the reference's Toy example, unchanged ---------------------------------------------------


def test_reference_toy_example_verbatim(local_env, tmp_path):
    class Toy:
        def predict(self, x):
            return x**2

    estimator = Toy()
    model = GenericModel(estimator=estimator, artifact_dir=str(tmp_path / "toy"))
    model.summary_status()
    model.prepare(
        inference_conda_env="dbexp_p38_cpu_v1",
        inference_python_version="3.8",
        model_file_name="toy_model.pkl",
        training_id=None,
        force_overwrite=True,
    )
    assert model.verify(2) == {"prediction": 4}
    assert model.verify(3, in_process=True) == {"prediction": 9}
    env = model.runtime_info.model_deployment.inference_conda_env
    assert env.inference_env_slug == "dbexp_p38_cpu_v1"
    assert env.inference_env_type == "data_science"
    assert env.inference_env_path.endswith("/dbexp_p38_cpu_v1")
    assert os.path.isfile(tmp_path / "toy" / "toy_model.pkl")
    df = model.introspect()
    assert set(df["Result"]) == {TEST_STATUS.PASSED}, df.to_string()


# --- public API and the reference's signatures ------------------------------------------------

REFERENCE_NAMES = {
    # classes and enums of the reference that the prepare stage covers
    "ModelArtifact", "ModelIntrospect", "Introspectable", "PrintItem", "TEST_STATUS",
    "ModelCustomMetadata", "ModelCustomMetadataItem", "ModelTaxonomyMetadata",
    "ModelTaxonomyMetadataItem", "ModelProvenanceMetadata", "ModelMetadata", "ModelMetadataItem",
    "UseCaseType", "Framework", "MetadataCustomCategory", "MetadataCustomKeys",
    "MetadataCustomPrintColumns", "MetadataTaxonomyKeys", "MetadataTaxonomyPrintColumns",
    "MetadataMixin", "GenericModel", "FrameworkSpecificModel", "SummaryStatus", "ModelState",
    "DataScienceModelType", "ModelDeploymentRuntimeType", "ModelProperties", "BaseProperties",
}  # fmt: skip

REFERENCE_EXCEPTIONS = {
    "AritfactFolderStructureError": (),
    "ArtifactNestedFolderError": (),
    "ArtifactRequiredFilesError": (),
    "ArtifactsNotAvailableError": (),
    "NotActiveDeploymentError": (),
    "RuntimeInfoInconsistencyError": (),
    "SerializeInputNotImplementedError": (NotImplementedError,),
    "SerializeModelNotImplementedError": (NotImplementedError,),
    "IntrospectionNotPassed": (ValueError,),
    "MetadataDescriptionTooLong": (ValueError,),
    "MetadataSizeTooLarge": (ValueError,),
    "MetadataValueTooLong": (ValueError,),
}


def test_every_reference_name_of_the_prepare_stage_is_importable_from_the_package():
    for name in REFERENCE_NAMES | set(REFERENCE_EXCEPTIONS):
        assert name in ocimodel.__all__, name
        assert getattr(ocimodel, name).__name__ == name, name
    for name, bases in REFERENCE_EXCEPTIONS.items():
        error = getattr(ocimodel, name)
        assert issubclass(error, OcimodelError), name
        for base in bases:
            assert issubclass(error, base), (name, base)
    assert {s.value for s in ocimodel.ModelState} == {
        "Done", "Available", "Not Available", "Not Applicable", "Needs Action",
    }  # fmt: skip
    assert (TEST_STATUS.PASSED, TEST_STATUS.NOT_PASSED, TEST_STATUS.NOT_TESTED) == (
        "Passed",
        "Failed",
        "Skipped",
    )
    assert ocimodel.DataScienceModelType.MODEL == "datasciencemodel"
    assert ocimodel.ModelDeploymentRuntimeType.CONDA == "conda"


_SAMPLE = None
REFERENCE_SIGNATURES = {
    "__init__": [
        ("estimator", None), ("artifact_dir", None), ("properties", None), ("auth", None),
        ("serialize", True), ("model_save_serializer", None), ("model_input_serializer", None),
        ("kwargs", _SAMPLE),
    ],
    "prepare": [
        ("inference_conda_env", None), ("inference_python_version", None),
        ("training_conda_env", None), ("training_python_version", None),
        ("model_file_name", None), ("as_onnx", False), ("initial_types", None),
        ("force_overwrite", False), ("namespace", "id19sfcrra6z"), ("use_case_type", None),
        ("X_sample", None), ("y_sample", None), ("training_script_path", None),
        ("training_id", None), ("ignore_pending_changes", True), ("max_col_num", 2000),
        ("ignore_conda_error", False), ("score_py_uri", None), ("kwargs", _SAMPLE),
    ],
    "serialize_model": [
        ("as_onnx", False), ("initial_types", None), ("force_overwrite", False),
        ("X_sample", None), ("kwargs", _SAMPLE),
    ],
    "populate_metadata": [
        ("use_case_type", None), ("data_sample", None), ("X_sample", None), ("y_sample", None),
        ("training_script_path", None), ("training_id", None),
        ("ignore_pending_changes", True), ("max_col_num", 2000), ("ignore_conda_error", False),
        ("kwargs", _SAMPLE),
    ],
    "populate_schema": [
        ("data_sample", None), ("X_sample", None), ("y_sample", None), ("max_col_num", 2000),
        ("kwargs", _SAMPLE),
    ],
    "from_model_artifact": [
        ("uri", inspect.Parameter.empty), ("model_file_name", None), ("artifact_dir", None),
        ("auth", None), ("force_overwrite", False), ("properties", None),
        ("ignore_conda_error", False), ("kwargs", _SAMPLE),
    ],
    "set_model_save_serializer": [("model_save_serializer", inspect.Parameter.empty)],
    "set_model_input_serializer": [("model_input_serializer", inspect.Parameter.empty)],
    "reload": [],
    "reload_runtime_info": [],
    "introspect": [],
    "summary_status": [],
}  # fmt: skip


@pytest.mark.parametrize("method", sorted(REFERENCE_SIGNATURES))
def test_generic_model_prepare_side_signatures_follow_the_reference(method):
    params = [
        p
        for p in inspect.signature(getattr(GenericModel, method)).parameters.values()
        if p.name not in ("self", "cls")
    ]
    got = [
        (p.name, _SAMPLE if p.kind is inspect.Parameter.VAR_KEYWORD else p.default) for p in params
    ]
    assert got == REFERENCE_SIGNATURES[method]


def test_generic_model_prepare_side_properties_and_verify_parameters(tmp_path):
    for name in ("metadata_taxonomy", "metadata_custom", "metadata_provenance"):
        assert isinstance(inspect.getattr_static(GenericModel, name), property), name
    for name in ("schema_input", "schema_output"):
        assert isinstance(inspect.getattr_static(GenericModel, name), property), name
    model = GenericModel(object(), artifact_dir=str(tmp_path / "a"))
    assert model.runtime_info is None  # filled by prepare/reload
    verify = inspect.signature(GenericModel.verify).parameters
    assert list(verify)[1:4] == ["data", "reload_artifacts", "auto_serialize_data"]
    assert verify["data"].default is None and verify["reload_artifacts"].default is True


# --- conda index location from the environment, end to end -----------------------------------


def test_conda_bucket_env_moves_the_service_pack_index(local_env, monkeypatch, tmp_path):
    from ocimodel.oci import auth as oci_auth

    client = oci_auth.make_client(oci.object_storage.ObjectStorageClient)
    namespace = client.get_namespace().data
    bucket = f"packs-{uuid.uuid4().hex[:8]}"
    client.create_bucket(
        namespace,
        oci.object_storage.models.CreateBucketDetails(
            name=bucket, compartment_id=local_env.config["tenancy"]
        ),
    )
    path = f"oci://{bucket}@{namespace}/service_pack/cpu/Mine/1.0/mine_p312_v1"
    index = [{"slug": "mine_p312_v1", "pack_path": path, "python": "3.12"}]
    client.put_object(namespace, bucket, "service_pack/index.json", json.dumps(index).encode())
    monkeypatch.setenv("CONDA_BUCKET_NS", namespace)
    monkeypatch.setenv("CONDA_BUCKET_NAME", bucket)

    model = GenericModel(lambda x: x, artifact_dir=str(tmp_path / "art"))
    model.prepare(inference_conda_env="mine_p312_v1")  # python version comes from the index
    env = model.runtime_info.model_deployment.inference_conda_env
    assert (env.inference_env_path, env.inference_env_type) == (path, "data_science")
    assert env.inference_python_version == "3.12"
    # a slug only the default index knows is now unknown: the override is really used
    other = GenericModel(lambda x: x, artifact_dir=str(tmp_path / "other"))
    with pytest.raises(CondaEnvError, match=f"'dbexp_p38_cpu_v1'.*{bucket}"):
        other.prepare(inference_conda_env="dbexp_p38_cpu_v1")
    assert _is_empty(tmp_path / "other")


# --- bad inputs entering through prepare: typed, named, nothing left behind -------------------


def test_bad_python_version_reports_every_field_and_writes_nothing(iris, offline, tmp_path):
    folder = tmp_path / "art"
    model = GenericModel(iris[0], artifact_dir=str(folder))
    with pytest.raises(RuntimeYamlError) as info:
        model.prepare(inference_conda_env=PACK, inference_python_version="2.7")
    text = str(info.value)
    assert "INFERENCE_PYTHON_VERSION is '2.7'" in text
    assert "TRAINING_PYTHON_VERSION is '2.7'" in text
    assert len(info.value.problems) == 2
    assert _is_empty(folder)


def test_malformed_pack_path_is_typed_and_writes_nothing(iris, offline, tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(RuntimeYamlError, match="'oci://nobucket'.*oci://bucket@namespace"):
        GenericModel(iris[0], artifact_dir=str(folder)).prepare(
            inference_conda_env="oci://nobucket", inference_python_version="3.11"
        )
    assert _is_empty(folder)


def test_bad_use_case_type_fails_prepare_naming_valid_values(iris, offline, tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(OcimodelError, match="'bogus'.*binary_classification"):
        GenericModel(iris[0], artifact_dir=str(folder)).prepare(use_case_type="bogus", **OK_ENV)
    assert _is_empty(folder)


def test_max_col_num_skips_the_schema_with_a_warning_and_prepares(iris, offline, tmp_path):
    from ocimodel.prepare import read_metadata
    from ocimodel.schema import SchemaTooWideWarning

    estimator, X, y = iris
    folder = tmp_path / "art"
    with pytest.warns(SchemaTooWideWarning) as caught:
        model = GenericModel(estimator, artifact_dir=str(folder)).prepare(
            X_sample=X.head(10), y_sample=y.head(10), max_col_num=3, **OK_ENV
        )
    (warning,) = [w.message for w in caught if isinstance(w.message, SchemaTooWideWarning)]
    assert "input sample has 4 columns, more than max_col_num=3" in str(warning)
    assert "max_col_num=4" in str(warning)  # how to get a schema
    assert model.schema_input is None and len(model.schema_output) == 1
    stored = read_metadata(str(folder))
    assert stored.schema_input is None and stored.schema_output is not None
    assert {"model.pkl", "score.py", "runtime.yaml", "ocimodel-metadata.json"} <= set(
        os.listdir(folder)
    )
    again = GenericModel(estimator, artifact_dir=str(folder)).prepare(
        X_sample=X.head(10), max_col_num=4, force_overwrite=True, **OK_ENV
    )
    assert again.schema_input.keys == list(X.columns)


def test_bad_sample_type_fails_prepare_naming_accepted_types(iris, offline, tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(OcimodelError, match="set.*DataFrame"):
        GenericModel(iris[0], artifact_dir=str(folder)).prepare(X_sample={1, 2}, **OK_ENV)
    assert _is_empty(folder)


def test_custom_metadata_over_the_budget_fails_at_prepare(iris, offline, tmp_path):
    folder = tmp_path / "art"
    model = GenericModel(iris[0], artifact_dir=str(folder))
    size = 0
    for i in range(200):
        try:
            model.metadata_custom.add(f"key{i:03d}", "v" * 250, category="Other")
        except MetadataSizeTooLarge:
            break
        size += 1
    assert 0 < size < 200  # the budget refused an add at once
    with pytest.raises(MetadataSizeTooLarge, match="32000"):
        model.prepare(**OK_ENV)  # prepare's own items (conda env, model file...) do not fit
    assert _is_empty(folder)


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


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


# --- from_uri with tar archives ---------------------------------------------------------------


def _prepared(folder):
    GenericModel(lambda x: x, artifact_dir=str(folder)).prepare(
        inference_conda_env=PACK, inference_python_version="3.11", ignore_conda_error=True
    )
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


# --- the tasks: retry policy and one log line per step ----------------------------------------


def test_only_remote_reading_tasks_retry_and_only_on_transient_failures():
    from prefect.states import Failed

    from tasks._retry import retry_on_transient
    from tasks.introspect import introspect_artifact
    from tasks.prepare import (
        generate_runtime_yaml,
        generate_score_py,
        populate_metadata,
        serialize_model,
    )
    from tasks.verify import verify_artifact

    for remote in (generate_runtime_yaml, generate_score_py):
        assert remote.retries >= 1 and remote.retry_condition_fn is retry_on_transient
    for local in (serialize_model, populate_metadata, introspect_artifact, verify_artifact):
        assert not local.retries, local.name

    def failed_with(cause: BaseException, wrapper: str) -> object:
        try:
            try:
                raise cause
            except BaseException:
                # The way ocimodel.conda wraps a failed read of the index.
                message = f"The service pack index could not be read ({wrapper})"
                raise CondaEnvError(message) from None
        except CondaEnvError as exc:
            return Failed(data=exc)

    throttled = oci.exceptions.ServiceError(429, "TooManyRequests", {}, "slow down")
    missing = oci.exceptions.ServiceError(404, "NotFound", {}, "no such object")
    assert retry_on_transient(None, None, failed_with(throttled, "429"))
    assert retry_on_transient(None, None, failed_with(ConnectionResetError("reset"), "reset"))
    assert not retry_on_transient(None, None, failed_with(missing, "404"))
    assert not retry_on_transient(None, None, Failed(data=CondaEnvError("unknown slug 'x'")))


@pytest.fixture(scope="module")
def prefect_api():
    """A Prefect API for this module, unless the session already runs one."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_each_prepare_task_logs_one_line_per_step(iris, offline, prefect_api, tmp_path):
    import prefect

    from flows.prepare_model import prepare_model

    estimator, X, _ = iris
    handler = _Records()
    logger = logging.getLogger("prefect.task_runs")
    logger.addHandler(handler)
    try:
        prepare_model(
            estimator,
            str(tmp_path / "art"),
            inference_conda_env=PACK,
            inference_python_version="3.11",
            X_sample=X.head(20),
            check_remote=False,
            verify_data=X.head(3),
        )
    finally:
        logger.removeHandler(handler)
    engine = os.path.dirname(prefect.__file__)
    per_task: dict[str, list[str]] = {}
    for record in handler.records:
        if record.levelno == logging.INFO and not record.pathname.startswith(engine):
            run_name = getattr(record, "task_run_name", "")
            per_task.setdefault(run_name.rsplit("-", 1)[0], []).append(record.getMessage())
    expected = {
        "serialize-model",
        "generate-score-py",
        "generate-runtime-yaml",
        "populate-metadata",
        "introspect-artifact",
        "verify-artifact",
    }
    assert set(per_task) == expected, per_task
    for task, lines in per_task.items():
        assert len(lines) == 1, (task, lines)
    assert "model.pkl" in per_task["serialize-model"][0]
    assert PACK in per_task["generate-runtime-yaml"][0]
    assert "Passed" in per_task["introspect-artifact"][0]


# --- verify reaches score.py with the wire format and plain JSON alike ------------------------


def test_verify_accepts_plain_json_as_the_model_server_sends_it(iris, offline, tmp_path):
    estimator, X, _ = iris
    model = GenericModel(estimator, artifact_dir=str(tmp_path / "art"))
    model.prepare(**OK_ENV)
    rows = X.head(4)
    expected = estimator.predict(rows).tolist()
    assert model.verify(rows.values.tolist(), auto_serialize_data=False)["prediction"] == expected
    assert model.verify(rows, auto_serialize_data=True)["prediction"] == expected
    assert model.verify(np.asarray(rows.values))["prediction"] == expected


# --- a forced prepare under another model file name; a failed archive load --------------------


def test_forced_prepare_under_a_new_model_file_name_removes_the_recorded_old_one(
    iris, offline, tmp_path, caplog
):
    from ocimodel.prepare import read_metadata

    estimator, _, _ = iris
    folder = tmp_path / "art"
    GenericModel(estimator, artifact_dir=str(folder)).prepare(**OK_ENV)
    (folder / "notes.pkl").write_bytes(b"the user's, not recorded by prepare")
    with caplog.at_level(logging.WARNING, logger="ocimodel.prepare"):
        GenericModel(estimator, artifact_dir=str(folder)).prepare(
            model_file_name="other.pkl", force_overwrite=True, **OK_ENV
        )
    files = set(os.listdir(folder))
    assert "other.pkl" in files and "model.pkl" not in files
    assert "notes.pkl" in files  # never guessed from the extension
    assert "Removed model.pkl" in caplog.text and "other.pkl" in caplog.text
    custom = read_metadata(str(folder)).custom
    assert custom["ModelFileName"].value == "other.pkl"


def test_unsafe_archive_without_artifact_dir_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    from ocimodel.errors import UnsafeArchiveError

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        for name, data in (("score.py", b"s"), ("../evil.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(UnsafeArchiveError):
        GenericModel.from_model_artifact(str(evil))
    assert os.listdir(scratch) == []
    assert not (tmp_path / "evil.txt").exists()
