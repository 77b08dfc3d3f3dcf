"""The prepare flow under a real Prefect server, against the local OCI service: the artifact it
builds, introspection failures, rollback of a failed run, and one log line per task step."""

from __future__ import annotations

import logging
import os

import pytest
from prefect import flow
from prefect.artifacts import Artifact
from prepare_support import PACK, SLUG, snapshot

from ocimodel.errors import IntrospectionNotPassed, OcimodelError
from ocimodel.flows.prepare_model import prepare_model
from ocimodel.metadata.prepared import read_metadata
from ocimodel.tasks.introspect import INTROSPECTION_ARTIFACT_KEY
from ocimodel.tasks.verify import verify_artifact


@flow
def prepare_and_verify(model, artifact_dir, X_sample, samples):
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


def test_introspection_log_lines_say_the_result_once(tmp_path):
    from ocimodel.introspect import run_checks
    from ocimodel.tasks.introspect import describe_check

    (tmp_path / "score.py").write_text("def predict(x):\n    return x\n")
    results = run_checks(str(tmp_path), check_remote=False)
    lines = [describe_check(r) for r in results if not r.passed]
    assert "score_load_model Failed: score.py has no top-level load_model()" in "\n".join(lines)
    assert "runtime_version: Skipped because runtime.yaml is missing." in lines
    for line in lines:
        for status in ("Skipped", "Failed"):
            assert f"{status}: {status}" not in line and f"{status} {status}" not in line


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

    from ocimodel.pipeline import prepare_artifact

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


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_each_prepare_task_logs_one_line_per_step(iris, offline, prefect_harness, tmp_path):
    import prefect

    from ocimodel.flows.prepare_model import prepare_model

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
