"""score.py turns JSON records, dict-of-columns and one-row Series into the training DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from score_artifacts import prepare

from ocimodel.errors import ScoreError
from ocimodel.schema import INPUT_SCHEMA_FILE_NAME, Schema
from ocimodel.serde import get_model_save_serializer
from ocimodel.verify import verify_artifact


@pytest.fixture(scope="module")
def frame_pipeline():
    """A ColumnTransformer pipeline fitted on a DataFrame of mixed columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 80),
            "city": rng.choice(["oslo", "rome", "lima"], 80),
            "income": rng.normal(50.0, 10.0, 80),
        }
    )
    labels = ((frame.age > 45) ^ (frame.city == "rome")).astype(int)
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["city"])]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(frame, labels)
    sample = frame.iloc[:8]
    assert len(set(model.predict(sample))) > 1
    return model, sample


def make_probe():
    """A model with no feature_names_in_ that reports the columns and dtypes it receives."""

    class Probe:
        def predict(self, data):
            if isinstance(data, pd.DataFrame):
                return {"columns": list(data.columns), "dtypes": [str(t) for t in data.dtypes]}
            return {"type": type(data).__name__}

    return Probe()


@pytest.mark.parametrize("in_process", [False, True])
def test_records_columns_and_series_reach_a_dataframe_pipeline(
    tmp_path, frame_pipeline, in_process
):
    model, sample = frame_pipeline
    prepare(tmp_path, model)
    expected = {"prediction": model.predict(sample).tolist()}
    shuffled = sample[["income", "city", "age"]]
    payloads = [
        sample.to_dict(orient="records"),
        sample.to_dict(),
        sample.to_dict(orient="list"),
        shuffled.to_dict(orient="records"),
        sample.assign(extra=1).to_dict(orient="list"),
        sample,
    ]
    for payload in payloads:
        assert verify_artifact(tmp_path, payload, in_process=in_process) == expected
    one_row = {"prediction": model.predict(sample.iloc[[3]]).tolist()}
    assert verify_artifact(tmp_path, sample.iloc[3], in_process=in_process) == one_row
    row = sample.iloc[[3]].to_dict(orient="records")[0]
    assert verify_artifact(tmp_path, row, in_process=in_process) == one_row
    plain = verify_artifact(
        tmp_path, sample.to_dict(orient="records"), in_process=in_process, auto_serialize_data=False
    )
    assert plain == expected


@pytest.mark.parametrize("in_process", [False, True])
def test_missing_columns_are_named_in_the_error(tmp_path, frame_pipeline, in_process):
    model, sample = frame_pipeline
    prepare(tmp_path, model)
    with pytest.raises(ScoreError, match=r"lacks the column\(s\) \['city'\]") as info:
        verify_artifact(tmp_path, [{"age": 30, "income": 40.0}], in_process=in_process)
    assert "'age', 'city', 'income'" in str(info.value)
    with pytest.raises(ScoreError, match=r"\['age', 'income'\]"):
        verify_artifact(tmp_path, {"city": ["oslo"]}, in_process=in_process)


@pytest.mark.parametrize("in_process", [False, True])
def test_models_not_trained_on_a_dataframe_get_the_request_unchanged(tmp_path, in_process):
    from sklearn.linear_model import LinearRegression

    toy = tmp_path / "toy"
    toy.mkdir()

    def make_toy():
        class Toy:
            def predict(self, x):
                return x**2

        return Toy()

    prepare(toy, make_toy())
    assert verify_artifact(toy, 2, in_process=in_process) == {"prediction": 4}
    assert verify_artifact(toy, 3, in_process=in_process) == {"prediction": 9}

    array_model = tmp_path / "array"
    array_model.mkdir()
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    regression = LinearRegression().fit(X, [1.0, 2.0, 5.0])
    prepare(array_model, regression)
    expected = {"prediction": pytest.approx(regression.predict(X).tolist())}
    assert verify_artifact(array_model, X.tolist(), in_process=in_process) == expected

    probe = tmp_path / "probe"
    probe.mkdir()
    prepare(probe, make_probe())
    records = [{"a": 1}, {"a": 2}]
    assert verify_artifact(probe, records, in_process=in_process) == {
        "prediction": {"type": "list"}
    }
    Schema.from_sample([[1, 2], [3, 4]]).to_json_file(str(probe / INPUT_SCHEMA_FILE_NAME))
    row = {"0": 1, "1": 2}
    assert verify_artifact(probe, row, in_process=in_process) == {"prediction": {"type": "dict"}}


@pytest.mark.parametrize("in_process", [False, True])
def test_input_schema_gives_column_order_and_dtypes(tmp_path, in_process):
    prepare(tmp_path, make_probe())
    training = pd.DataFrame(
        {
            "n": np.array([1, 2, 3], dtype="int32"),
            "f": [0.5, 1.5, 2.5],
            "c": pd.Categorical(["x", "y", "x"], categories=["x", "y", "z"]),
            "b": [True, False, True],
            "i": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    Schema.from_sample(training).to_json_file(str(tmp_path / INPUT_SCHEMA_FILE_NAME))
    records = [
        {"i": None, "b": False, "c": "z", "f": 2, "n": 7},
        {"i": 4, "b": True, "c": "x", "f": 1, "n": 8},
    ]
    expected = {
        "prediction": {
            "columns": ["n", "f", "c", "b", "i"],
            "dtypes": ["int32", "float64", "category", "bool", "Int64"],
        }
    }
    assert verify_artifact(tmp_path, records, in_process=in_process) == expected
    one_row = {"i": 4, "b": True, "c": "y", "f": 1.0, "n": 8}
    assert verify_artifact(tmp_path, one_row, in_process=in_process) == expected
    with pytest.raises(ScoreError, match=r"lacks the column\(s\) \['b', 'i'\]"):
        verify_artifact(tmp_path, {"n": [1], "f": [1.0], "c": ["x"]}, in_process=in_process)


def test_onnx_model_takes_records_through_its_input_schema(tmp_path):
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
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
    Schema.from_sample(frame).to_json_file(str(tmp_path / INPUT_SCHEMA_FILE_NAME))
    sample = frame.iloc[[0, 1, 2, 3, 35]]
    expected = {"prediction": model.predict(sample).tolist()}
    assert verify_artifact(tmp_path, sample.to_dict(orient="records")) == expected
    assert verify_artifact(tmp_path, sample.to_dict(), in_process=True) == expected


def test_unreadable_input_schema_leaves_the_request_unchanged(tmp_path):
    prepare(tmp_path, make_probe())
    (tmp_path / INPUT_SCHEMA_FILE_NAME).write_text('{"schema": [{"name": "a", "order": "x"}]}')
    records = [{"a": 1}]
    assert verify_artifact(tmp_path, records, in_process=True) == {"prediction": {"type": "list"}}
