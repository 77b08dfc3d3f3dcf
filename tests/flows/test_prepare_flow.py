"""The prepare flow under a real Prefect server, against the local OCI service."""

from __future__ import annotations

import os

import numpy as np
import pytest
from prefect import flow
from prefect.artifacts import Artifact
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from flows.prepare_model import prepare_model
from ocimodel.errors import IntrospectionNotPassed, OcimodelError
from ocimodel.prepare import read_metadata
from tasks._retry import is_transient
from tasks.introspect import INTROSPECTION_ARTIFACT_KEY
from tasks.verify import verify_artifact

SLUG = "generalml_p311_cpu_x86_64_v1"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    return model, X, y


@pytest.fixture
def local_env(local_oci, monkeypatch):
    for key, value in local_oci.env().items():
        monkeypatch.setenv(key, value)
    return local_oci


def snapshot(folder: str) -> dict[str, bytes]:
    out = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
    return out


@flow
def prepare_and_verify(model, artifact_dir, X_sample, samples):  # noqa: N803
    folder = prepare_model(
        model, artifact_dir, inference_conda_env=SLUG, X_sample=X_sample, y_sample=None
    )
    return folder, [verify_artifact(folder, data)["prediction"] for data in samples]


def test_prepare_flow_builds_a_valid_artifact_and_verify_matches(iris, local_env, tmp_path):
    estimator, X, _ = iris
    sample = X.sample(10, random_state=1)
    samples = [sample.values.tolist(), sample.values, sample]
    folder, predictions = prepare_and_verify(estimator, str(tmp_path / "art"), X.head(100), samples)
    expected = estimator.predict(sample).tolist()
    assert predictions == [expected, expected, expected]
    files = set(os.listdir(folder))
    assert {"score.py", "runtime.yaml", "model.pkl"} <= files
    assert "ocimodel-manifest.json" not in files  # written when the artifact is zipped
    table = Artifact.get(INTROSPECTION_ARTIFACT_KEY)
    assert table is not None and table.type == "table"
    assert "runtime_path_exist" in table.data and "Failed" not in table.data
    assert "Skipped" not in table.data  # the local service answered the storage check
    metadata = read_metadata(folder)
    assert metadata.schema_input.keys == list(X.columns)
    assert metadata.taxonomy["Framework"].value == "scikit-learn"

    before = snapshot(folder)
    again = prepare_model(
        estimator, folder, inference_conda_env=SLUG, X_sample=X.head(100), verify_data=sample
    )
    assert again == folder
    assert snapshot(folder) == before  # re-running converges on identical files


def test_introspection_failure_fails_the_flow_unless_ignored(iris, local_env, tmp_path):
    broken = tmp_path / "score.py"
    broken.write_text("def predict(x):\n    return x\n")
    kwargs = dict(inference_conda_env=SLUG, score_py_uri=str(broken))
    with pytest.raises(IntrospectionNotPassed, match="score_load_model"):
        prepare_model(iris[0], str(tmp_path / "a"), verify_data=[[1.0, 2.0, 3.0, 4.0]], **kwargs)
    folder = prepare_model(iris[0], str(tmp_path / "b"), ignore_introspection=True, **kwargs)
    with open(os.path.join(folder, "score.py")) as fh:
        assert fh.read() == broken.read_text()


def test_only_transient_errors_are_retried():
    import oci

    assert is_transient(oci.exceptions.ServiceError(503, "Unavailable", {}, "down"))
    assert is_transient(oci.exceptions.ServiceError(429, "TooManyRequests", {}, "slow down"))
    assert not is_transient(oci.exceptions.ServiceError(404, "NotFound", {}, "missing"))
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise ValueError("index could not be read") from None
    except ValueError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(FileExistsError("exists"))
    assert not is_transient(np.linalg.LinAlgError("singular"))
    assert is_transient(oci.exceptions.ServiceError(409, "IncorrectState", {}, "busy"))
    assert not is_transient(oci.exceptions.ServiceError(409, "Conflict", {}, "name taken"))
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError:
            raise FileExistsError("cleanup failed while handling the reset")  # noqa: B904
    except FileExistsError as unrelated:
        assert not is_transient(unrelated)


def test_introspection_log_lines_say_the_result_once(tmp_path):
    from ocimodel.introspect import run_checks
    from tasks.introspect import describe_check

    (tmp_path / "score.py").write_text("def predict(x):\n    return x\n")
    results = run_checks(str(tmp_path), check_remote=False)
    lines = [describe_check(r) for r in results if not r.passed]
    assert "score_load_model Failed: score.py has no top-level load_model()" in "\n".join(lines)
    assert "runtime_version: Skipped because runtime.yaml is missing." in lines
    for line in lines:
        for status in ("Skipped", "Failed"):
            assert f"{status}: {status}" not in line and f"{status} {status}" not in line


def test_remote_tasks_retry_once_on_top_of_the_sdk_retries():
    from tasks import prepare as prepare_tasks

    for task_ in (prepare_tasks.generate_runtime_yaml, prepare_tasks.generate_score_py):
        assert task_.retries == 1
        assert task_.retry_delay_seconds in (10, [10])


class _Unpicklable:
    """A model holding a lock: no serializer can save it."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()

    def predict(self, data):
        return data


def test_failed_flow_rolls_back_and_stores_no_sample_data(iris, local_env, tmp_path):
    import asyncio

    import pandas as pd
    from prefect.client.orchestration import get_client

    from ocimodel.prepare import prepare_artifact

    folder = tmp_path / "art"
    prepare_artifact(iris[0], str(folder), inference_conda_env=SLUG, training_python_version="3.10")
    before = snapshot(str(folder))
    ssns = pd.DataFrame({"ssn": [f"078-05-{i:04d}" for i in range(150)], "age": range(150)})
    state = prepare_model(
        _Unpicklable(),
        str(folder),
        inference_conda_env=SLUG,
        model_file_name="other.pkl",  # runtime.yaml, score.py and metadata change, then
        use_case_type="regression",
        X_sample=ssns,
        y_sample=ssns["age"],
        verify_data=ssns.values,
        force_overwrite=True,
        return_state=True,
    )  # the model fails to serialize
    assert state.is_failed()
    assert snapshot(str(folder)) == before  # nothing added, every replaced file put back

    async def stored_parameters():
        async with get_client() as client:
            return (await client.read_flow_run(state.state_details.flow_run_id)).parameters

    stored = asyncio.run(stored_parameters())
    assert stored["X_sample"] == "<DataFrame 150x2>"
    assert stored["y_sample"] == "<Series 150 int64>"
    assert stored["verify_data"] == "<ndarray (150, 2) object>"
    assert stored["model"] == "<_Unpicklable>"
    assert stored["artifact_dir"] == str(folder) and stored["use_case_type"] == "regression"
    assert "078-05" not in str(stored)

    new_folder = tmp_path / "new"
    with pytest.raises(OcimodelError, match="'regresion'.*regression"):
        prepare_model(iris[0], str(new_folder), inference_conda_env=SLUG, use_case_type="regresion")
    assert not new_folder.exists()
