"""GenericModel prepare/verify/introspect against real files, real score.py runs, and the local
OCI service for conda slug resolution and the object storage existence check: the reference's
Toy example, converging re-prepares, from_model_artifact and reload, the summary status, and no
temporary artifact folder left by a model that cannot be built or loaded."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile

import numpy as np
import pandas as pd
import pytest
from prepare_support import OK_ENV, PACK
from prepare_support import snapshot as files
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ocimodel
from ocimodel import (
    TEST_STATUS,
    GenericModel,
    MetadataTaxonomyKeys,
    ModelState,
)
from ocimodel.errors import (
    SerializeInputNotImplementedError,
    SerializeModelNotImplementedError,
)
from ocimodel.properties import PropertyTypeError
from ocimodel.serde import InputSerializerRefusedError, ModelNotPicklableError


def status(model: GenericModel) -> dict[str, str]:
    df = model.summary_status()
    return dict(zip(df["Details"], df["Status"], strict=True))


def test_reference_toy_example_prepares_and_verifies(local_env, tmp_path):
    def make_toy():
        class Toy:
            def predict(self, x):
                return x**2

        return Toy()

    model = GenericModel(estimator=make_toy(), artifact_dir=str(tmp_path / "toy"))
    before = status(model)
    assert before["Initiated the model"] == ModelState.DONE.value
    assert before["Serialized model"] == ModelState.AVAILABLE.value
    assert before["Local tested .predict from score.py"] == ModelState.NOTAVAILABLE.value
    model.prepare(
        inference_conda_env="generalml_p38_cpu_v1",
        inference_python_version="3.8",
        model_file_name="toy_model.pkl",
        training_id=None,
        force_overwrite=True,
    )
    assert model.verify(2) == {"prediction": 4}
    after = status(model)
    for detail in ("Generated runtime.yaml", "Generated score.py", "Serialized model"):
        assert after[detail] == ModelState.DONE.value
    assert after["Local tested .predict from score.py"] == ModelState.DONE.value
    env = model.runtime_info.model_deployment.inference_conda_env
    assert env.inference_env_slug == "generalml_p38_cpu_v1"
    assert env.inference_env_path.startswith("oci://service-conda-packs@id19sfcrra6z/")
    assert model.properties.inference_python_version == "3.8"
    df = model.introspect()
    assert set(df["Result"]) == {TEST_STATUS.PASSED}, df.to_string()
    assert status(model)["Conducted Introspect Test"] == ModelState.DONE.value


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


def test_sklearn_pipeline_verify_matches_estimator_for_list_ndarray_dataframe(
    iris, offline, tmp_path
):
    estimator, X, y = iris
    model = GenericModel(estimator, artifact_dir=str(tmp_path / "art"))
    model.prepare(
        inference_conda_env=PACK,
        inference_python_version="3.11",
        X_sample=X.head(100),
        y_sample=y.head(100),
        use_case_type="multinomial_classification",
    )
    sample = X.sample(12, random_state=0)
    expected = estimator.predict(sample).tolist()
    for data in (sample.values.tolist(), sample.values, sample):
        assert model.verify(data)["prediction"] == expected
    assert model.framework == "scikit-learn"
    assert model.algorithm == "Pipeline"
    assert model.schema_input.keys == list(X.columns)
    assert model.metadata_custom["ModelFileName"].value == "model.pkl"
    with pytest.warns(UserWarning, match="could not be reached"):
        df = model.introspect()
    results = dict(zip(df["Test key"], df["Result"], strict=True))
    assert results.pop("runtime_path_exist") == TEST_STATUS.NOT_TESTED
    assert set(results.values()) == {TEST_STATUS.PASSED}
    recorded = model.metadata_taxonomy[MetadataTaxonomyKeys.ARTIFACT_TEST_RESULT].value
    assert recorded["score_predict"]["success"] is True
    assert recorded["runtime_path_exist"]["success"] is None


def test_verify_accepts_plain_json_as_the_model_server_sends_it(iris, offline, tmp_path):
    estimator, X, _ = iris
    model = GenericModel(estimator, artifact_dir=str(tmp_path / "art"))
    model.prepare(**OK_ENV)
    rows = X.head(4)
    expected = estimator.predict(rows).tolist()
    assert model.verify(rows.values.tolist(), auto_serialize_data=False)["prediction"] == expected
    assert model.verify(rows, auto_serialize_data=True)["prediction"] == expected
    assert model.verify(np.asarray(rows.values))["prediction"] == expected


def test_prepare_converges_and_guards_different_files(iris, offline, tmp_path):
    estimator, X, _ = iris
    folder = str(tmp_path / "art")
    kwargs = dict(inference_conda_env=PACK, inference_python_version="3.11", X_sample=X.head(5))
    GenericModel(estimator, artifact_dir=folder).prepare(**kwargs)
    first = files(folder)
    GenericModel(estimator, artifact_dir=folder).prepare(**kwargs)  # same inputs: no error
    assert files(folder) == first
    other = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
    other.fit(X, iris[2])
    with pytest.raises(FileExistsError, match="force_overwrite"):
        GenericModel(other, artifact_dir=folder).prepare(**kwargs)
    assert files(folder) == first  # nothing replaced
    GenericModel(other, artifact_dir=folder).prepare(force_overwrite=True, **kwargs)
    assert files(folder)["model.pkl"] != first["model.pkl"]


def test_from_model_artifact_and_reload(iris, offline, tmp_path):
    estimator, X, _ = iris
    src = str(tmp_path / "src")
    GenericModel(estimator, artifact_dir=src).prepare(
        inference_conda_env=PACK, inference_python_version="3.11", X_sample=X.head(20)
    )
    loaded = GenericModel.from_model_artifact(src, artifact_dir=str(tmp_path / "copy"))
    assert loaded.artifact_dir == str(tmp_path / "copy")
    np.testing.assert_array_equal(loaded.estimator.predict(X), estimator.predict(X))
    assert loaded.runtime_info.model_deployment.inference_conda_env.inference_env_path == PACK
    assert loaded.schema_input.keys == list(X.columns)
    assert loaded.metadata_taxonomy["Framework"].value == "scikit-learn"
    assert loaded.model_file_name == "model.pkl"
    assert status(loaded)["Generated score.py"] == ModelState.DONE.value
    assert loaded.verify(X.head(3))["prediction"] == estimator.predict(X.head(3)).tolist()
    loaded.estimator = None
    loaded.reload()
    np.testing.assert_array_equal(loaded.estimator.predict(X), estimator.predict(X))


def test_serializers_are_validated(iris, tmp_path):
    model = GenericModel(iris[0], artifact_dir=str(tmp_path))
    with pytest.raises(SerializeInputNotImplementedError, match="json"):
        model.set_model_input_serializer("cloudpickle")
    model.set_model_save_serializer("joblib")
    assert model.get_model_serializer().name == "joblib"
    assert GenericModel.model_save_serializer_type.CLOUDPICKLE == "cloudpickle"


def test_verify_before_prepare_says_what_to_do(tmp_path):
    model = GenericModel(object(), artifact_dir=str(tmp_path / "empty"))
    with pytest.raises(ocimodel.ArtifactsNotAvailableError, match="prepare"):
        model.verify([1])


def test_summary_status_updates_and_rejects_unknown_rows(tmp_path):
    model = GenericModel(object(), artifact_dir=str(tmp_path))
    model.update_summary_status("Generated score.py", "Needs Action")
    model.update_summary_action("Generated score.py", "Fix score.py")
    df = model.summary_status()
    row = df[df["Details"] == "Generated score.py"].iloc[0]
    assert (row["Status"], row["Actions Needed"]) == ("Needs Action", "Fix score.py")
    assert isinstance(df, pd.DataFrame)
    with pytest.raises(ValueError, match="Generated score.py"):
        model.update_summary_status("No such row", "Done")


def test_unpicklable_model_leaves_no_partial_artifact(offline, tmp_path):
    import threading

    class Holder:
        def __init__(self):
            self.lock = threading.Lock()

        def predict(self, data):
            return data

    folder = tmp_path / "fresh"
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    for target in (folder, existing):
        model = GenericModel(Holder(), artifact_dir=str(target))
        with pytest.raises(ModelNotPicklableError, match="lock") as caught:
            model.prepare(inference_conda_env=PACK, inference_python_version="3.11")
        message = str(caught.value)
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, SerializeModelNotImplementedError)
        assert "Holder" in message and "'cloudpickle'" in message
        assert "joblib" in message and "SERDE" in message
    assert not folder.exists()
    assert sorted(os.listdir(existing)) == ["notes.txt"]


def test_bad_serializer_leaves_no_temporary_artifact_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def leftovers():
        return [n for n in os.listdir(tmp_path) if n.startswith("ocimodel-artifact-")]

    with pytest.raises(Exception, match="bogus"):
        GenericModel(estimator=1, model_save_serializer="bogus")
    with pytest.raises(InputSerializerRefusedError):
        GenericModel(estimator=1, model_input_serializer="cloudpickle")
    with pytest.raises(PropertyTypeError):
        GenericModel(estimator=1, properties={"compartment_id": 5})
    assert leftovers() == []
    model = GenericModel(estimator=1)
    assert leftovers() == [os.path.basename(model.artifact_dir)]


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
