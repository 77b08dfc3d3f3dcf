"""verify_artifact: the artifact's own score.py, in a fresh isolated process or in-process."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from score_artifacts import make_toy, prepare

from ocimodel.errors import ScoreError, SerializeInputNotImplementedError
from ocimodel.score import generate_score_py
from ocimodel.serde import SERDE, InputSerializerRefusedError, get_model_save_serializer
from ocimodel.verify import VerifyTimeoutError, verify_artifact


def custom_score(folder: Path, body: str) -> Path:
    source = folder / "custom_score.py"
    source.write_text(textwrap.dedent(body))
    generate_score_py(str(folder), model_file_name="unused.pkl", score_py_uri=str(source))
    source.unlink()
    return folder


@pytest.fixture(scope="module")
def iris_pipeline(iris):
    """The shared iris pipeline and its features."""
    model, X, _ = iris
    return model, X


@pytest.mark.parametrize("in_process", [False, True])
def test_toy_example_prepares_and_verifies_unchanged(tmp_path, in_process):
    prepare(tmp_path, make_toy(), file_name="toy_model.pkl")
    assert verify_artifact(tmp_path, 2, in_process=in_process) == {"prediction": 4}
    result = verify_artifact(tmp_path, np.array([1, 2, 3]), in_process=in_process)
    assert result == {"prediction": [1, 4, 9]}


@pytest.mark.parametrize("serializer", ["cloudpickle", "joblib"])
@pytest.mark.parametrize("in_process", [False, True])
def test_sklearn_pipeline_verify_matches_the_estimator(
    tmp_path, iris_pipeline, serializer, in_process
):
    model, X = iris_pipeline
    prepare(tmp_path, model, serializer=serializer)
    sample = X.iloc[[0, 60, 120, 149]]
    expected = model.predict(sample).tolist()
    assert len(set(expected)) > 1
    for data in (sample, sample.to_numpy(), sample.to_numpy().tolist()):
        assert verify_artifact(tmp_path, data, in_process=in_process) == {"prediction": expected}


def test_onnx_pipeline_verify_matches_the_estimator(tmp_path, iris_pipeline):
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from skl2onnx.common.data_types import FloatTensorType

    model, X = iris_pipeline
    saver = get_model_save_serializer("onnx", initial_types=[("x", FloatTensorType([None, 4]))])
    prepare(tmp_path, model, serializer=saver)
    assert "onnxruntime" in (tmp_path / "score.py").read_text()
    sample = X.iloc[[0, 60, 120, 149]]
    expected = model.predict(sample).tolist()
    for data in (sample, sample.to_numpy(), sample.to_numpy().tolist()):
        assert verify_artifact(tmp_path, data) == {"prediction": expected}
    assert verify_artifact(tmp_path, sample.iloc[0].tolist()) == {"prediction": expected[:1]}


@pytest.mark.parametrize("in_process", [False, True])
def test_exception_in_predict_is_a_score_error_with_the_traceback(tmp_path, in_process):
    custom_score(
        tmp_path,
        """
        def load_model():
            return None

        def predict(data, model=load_model()):
            raise ValueError(f"cannot score {data!r}")
        """,
    )
    with pytest.raises(ScoreError) as info:
        verify_artifact(tmp_path, [1, 2], in_process=in_process)
    error = info.value
    assert "failed in predict(): ValueError: cannot score [1, 2]" in str(error)
    assert "Traceback (most recent call last)" in error.remote_traceback
    assert "score.py" in error.remote_traceback and 'raise ValueError(f"cannot' in (
        error.remote_traceback
    )


def test_failing_load_model_is_reported_as_an_import_failure(tmp_path):
    prepare(tmp_path, make_toy())
    (tmp_path / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ScoreError, match="while importing score.py") as info:
        verify_artifact(tmp_path, 1)
    assert "UnpicklingError" in info.value.remote_traceback


def test_non_json_result_and_process_exit_are_score_errors(tmp_path):
    custom_score(
        tmp_path,
        """
        import os

        def predict(data, model=None):
            if data == "exit":
                os._exit(3)
            return {"prediction": object()}
        """,
    )
    with pytest.raises(ScoreError, match="into JSON.*TypeError"):
        verify_artifact(tmp_path, 1)
    with pytest.raises(ScoreError, match="exit status 3"):
        verify_artifact(tmp_path, "exit")


def test_timeout_is_a_typed_error(tmp_path):
    custom_score(
        tmp_path,
        """
        import time

        def predict(data, model=None):
            time.sleep(60)
        """,
    )
    with pytest.raises(VerifyTimeoutError, match="did not answer within 1.0 s"):
        verify_artifact(tmp_path, 1, timeout=1.0)


def test_subprocess_sees_only_the_artifact_not_the_callers_cwd_or_pythonpath(tmp_path, monkeypatch):
    caller = tmp_path / "caller"
    caller.mkdir()
    (caller / "shadow.py").write_text("VALUE = 'from caller'\n")
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "helper.py").write_text("VALUE = 'from artifact'\n")
    custom_score(
        artifact,
        """
        import os, sys
        import helper

        def predict(data, model=None):
            try:
                import shadow
                seen = shadow.VALUE
            except ImportError:
                seen = None
            here = os.path.dirname(os.path.abspath(__file__))
            return {"prediction": [helper.VALUE, seen, sys.path[0] == here, data]}
        """,
    )
    monkeypatch.chdir(caller)
    monkeypatch.setenv("PYTHONPATH", str(caller))
    result = verify_artifact(artifact, "x")
    assert result == {"prediction": ["from artifact", None, True, "x"]}


def test_in_process_mode_keeps_artifacts_apart_and_cleans_up(tmp_path):
    folders = []
    for value in ("first", "second"):
        folder = tmp_path / value
        folder.mkdir()
        (folder / "helper.py").write_text(f"VALUE = {value!r}\n")
        custom_score(
            folder,
            """
            import helper

            def predict(data, model=None):
                return {"prediction": helper.VALUE}
            """,
        )
        folders.append(folder)
    path_before, modules_before = list(sys.path), set(sys.modules)
    results = [verify_artifact(f, 0, in_process=True)["prediction"] for f in folders]
    assert results == ["first", "second"]
    assert sys.path == path_before
    added = set(sys.modules) - modules_before
    assert "helper" not in sys.modules and not any(n.startswith("_ocimodel_score") for n in added)


def test_custom_input_serde_is_used_for_the_request(tmp_path):
    class Tripled(SERDE):
        def serialize(self, data):
            return {"values": [v * 3 for v in data]}

        def deserialize(self, data):
            return np.array(data["values"])

    serde = Tripled()
    prepare(tmp_path, make_toy(), model_input_serializer=serde)
    assert verify_artifact(tmp_path, [1, 2], input_serializer=serde) == {"prediction": [9, 36]}


def test_bad_payloads_and_serializers_are_typed_errors(tmp_path):
    prepare(tmp_path, make_toy())
    with pytest.raises(InputSerializerRefusedError, match="'json'"):
        verify_artifact(tmp_path, 1, input_serializer="cloudpickle")
    with pytest.raises(SerializeInputNotImplementedError, match="auto_serialize_data=True"):
        verify_artifact(tmp_path, np.arange(2), auto_serialize_data=False)
    assert verify_artifact(tmp_path, 3, auto_serialize_data=False) == {"prediction": 9}
    with pytest.raises(ScoreError, match="run prepare"):
        verify_artifact(tmp_path / "nothing", 1)


def test_dataframe_dtypes_reach_the_model_unchanged(tmp_path):
    def make_probe():
        class Probe:
            def predict(self, frame):
                return {str(k): str(v) for k, v in frame.dtypes.items()}

        return Probe()

    prepare(tmp_path, make_probe())
    frame = pd.DataFrame(
        {
            "i": pd.array([1, None], dtype="Int64"),
            "c": pd.Categorical(["a", "b"]),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("UTC"),
            "f": np.array([1.0, 2.0], dtype=np.float32),
        }
    )
    expected = {k: str(v) for k, v in frame.dtypes.items()}
    assert verify_artifact(tmp_path, frame) == {"prediction": expected}
    assert os.listdir(tmp_path)


def test_onnx_multi_input_pipeline_takes_dataframes_and_dicts(tmp_path):
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame({"color": ["red", "blue", "red", "green"] * 10, "x": np.arange(40.0)})
    labels = np.where((frame.color == "red") | (frame.x > 30), 1, 0)
    columns = ColumnTransformer(
        [("oh", OneHotEncoder(), ["color"]), ("sc", StandardScaler(), ["x"])]
    )
    model = Pipeline([("ct", columns), ("lr", LogisticRegression())]).fit(frame, labels)
    prepare(tmp_path, model, serializer=get_model_save_serializer("onnx", X_sample=frame))
    sample = frame.iloc[[0, 1, 2, 3, 35]]
    expected = {"prediction": model.predict(sample).tolist()}
    assert verify_artifact(tmp_path, sample) == expected
    assert verify_artifact(tmp_path, sample.to_dict(orient="list")) == expected
    with pytest.raises(ScoreError, match="takes the inputs"):
        verify_artifact(tmp_path, [[1.0, 2.0]])


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("in_process", [False, True])
def test_verify_leaves_the_artifact_listing_unchanged(tmp_path, in_process, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    (tmp_path / "helper_square.py").write_text("def square(x):\n    return x * x\n")
    custom_score(
        tmp_path,
        """
        import helper_square

        def load_model():
            return None

        def predict(data, model=load_model()):
            return {"prediction": helper_square.square(data)}
        """,
    )
    before = _listing(tmp_path)
    assert verify_artifact(tmp_path, 3, in_process=in_process) == {"prediction": 9}
    assert _listing(tmp_path) == before
    assert not any("__pycache__" in name for name in _listing(tmp_path))
    assert sys.dont_write_bytecode is False
