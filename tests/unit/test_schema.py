"""Schemas from data samples: every accepted sample type, nullable dtypes, stats that agree
with pandas, JSON round trips, max_col_num (a wider sample: prepare warns and skips the input
schema), and the 32,000-byte catalog limit."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from prepare_support import OK_ENV

from ocimodel import GenericModel
from ocimodel.errors import OcimodelError
from ocimodel.schema import (
    DATA_SCHEMA_MAX_COL_NUM,
    SCHEMA_MAX_BYTES,
    DataSchemaTooLarge,
    FeatureType,
    Schema,
    SchemaFormatError,
    SchemaSampleError,
    SchemaSizeWarning,
    schema_for_catalog,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 100
    df = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "i": rng.integers(0, 50, n),
            "cat_str": rng.choice(["red", "green", "blue"], n),
            "Int64": pd.array(rng.integers(0, 9, n), dtype="Int64"),
            "boolean": pd.array(rng.random(n) > 0.5, dtype="boolean"),
            "string": pd.array([f"text {i}" for i in range(n)], dtype="string"),
            "Float64": pd.array(rng.random(n), dtype="Float64"),
            "when": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "category": pd.Categorical(rng.choice(["a", "b"], n), categories=["a", "b", "c"]),
            "flag": rng.random(n) > 0.2,
            "delay": pd.to_timedelta(rng.integers(0, 100, n), unit="s"),
        }
    )
    for col in ("Int64", "boolean", "string", "Float64"):
        df.loc[[3, 9], col] = pd.NA
    return df


def test_dataframe_columns_types_order_required(frame):
    schema = Schema.from_sample(frame)
    assert schema.keys == list(frame.columns)
    assert [a.order for a in schema.attributes] == list(range(frame.shape[1]))
    kinds = {a.name: a.feature_type for a in schema.attributes}
    assert kinds == {
        "f": FeatureType.CONTINUOUS,
        "i": FeatureType.INTEGER,
        "cat_str": FeatureType.CATEGORICAL,
        "Int64": FeatureType.INTEGER,
        "boolean": FeatureType.BOOLEAN,
        "string": FeatureType.TEXT,
        "Float64": FeatureType.CONTINUOUS,
        "when": FeatureType.DATETIME,
        "category": FeatureType.CATEGORICAL,
        "flag": FeatureType.BOOLEAN,
        "delay": FeatureType.TIMEDELTA,
    }
    dtypes = {a.name: a.dtype for a in schema.attributes}
    assert dtypes["Int64"] == "Int64" and dtypes["boolean"] == "boolean"
    assert dtypes["Float64"] == "Float64" and dtypes["string"] == str(frame["string"].dtype)
    required = {a.name: a.required for a in schema.attributes}
    assert required["f"] and required["i"] and not required["Int64"] and not required["string"]
    assert schema["Int64"].domain.stats["missing"] == 2


def test_numeric_stats_agree_with_pandas_describe(frame):
    schema = Schema.from_sample(frame)
    for name in ("f", "i", "Int64", "Float64"):
        expected = frame[name].astype("float64").describe()
        stats = schema[name].domain.stats
        assert stats["count"] == int(expected["count"])
        for key in ("mean", "std", "min", "25%", "50%", "75%", "max"):
            assert stats[key] == pytest.approx(float(expected[key]), rel=1e-12), (name, key)


def test_categorical_stats_and_constraints(frame):
    schema = Schema.from_sample(frame)
    counts = frame["cat_str"].value_counts()
    stats = schema["cat_str"].domain.stats
    assert stats["unique"] == 3 and stats["top"] == counts.index[0]
    assert stats["freq"] == counts.iloc[0]
    # declared categories become a constraint, including the unseen "c"
    assert schema["category"].domain.constraints == [
        {"expression": "$x in $values", "values": ["a", "b", "c"]}
    ]
    assert schema["boolean"].domain.stats["count"] == 98
    assert schema["when"].domain.stats["min"] == "2024-01-01T00:00:00+00:00"


def test_json_roundtrip_with_nullable_dtypes(frame, tmp_path):
    schema = Schema.from_sample(frame)
    text = schema.to_json()
    json.loads(text)  # strict JSON: no NaN
    assert "NaN" not in text
    again = Schema.from_json(text)
    assert again == schema
    assert again["Int64"].dtype == "Int64" and again["boolean"].required is False
    path = schema.to_json_file(str(tmp_path / "input_schema.json"))
    assert Schema.from_file(path) == schema
    assert schema.to_dict()["version"] == "1.1"
    assert schema.size() == len(text.encode("utf-8"))


def test_tensor_sample():
    images = np.zeros((5, 8, 8, 3), dtype="uint8")
    images[0, 0, 0, 0] = 255
    schema = Schema.from_sample(images)
    (attr,) = schema.attributes
    assert attr.feature_type == FeatureType.TENSOR and attr.dtype == "uint8"
    assert attr.domain.stats["shape"] == [None, 8, 8, 3]
    assert attr.domain.stats["max"] == 255.0
    nested = Schema.from_sample(images[:2].tolist())
    assert nested.attributes[0].domain.stats["shape"] == [None, 8, 8, 3]


@pytest.mark.parametrize(
    ("sample", "words"),
    [
        (None, "None"),
        ({"a": [1]}, "builtins.dict"),
        ("text", "builtins.str"),
        (42, "builtins.int"),
        ([], "empty list"),
        ((), "empty list"),
        (pd.DataFrame(), "no columns"),
        (pd.DataFrame({"a": []}), "no rows"),
        (pd.Series([], dtype=float), "no rows"),
        (np.array(3.0), "0-dimensional"),
        (np.zeros((0, 2, 2)), "no rows"),
        (np.zeros((0, 3)), "no rows"),
        ([1, [1, 2]], "mixes"),
        ([[1, 2], [1, [2, 3]]], "mixes"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicated column names"),
    ],
)
def test_bad_samples_raise_typed_errors(sample, words):
    with pytest.raises(SchemaSampleError, match=words) as info:
        Schema.from_sample(sample)
    assert isinstance(info.value, OcimodelError) and isinstance(info.value, ValueError)


def test_max_col_num_boundary():
    assert DATA_SCHEMA_MAX_COL_NUM == 2000
    wide = pd.DataFrame(np.zeros((2, 5)))
    assert len(Schema.from_sample(wide, max_col_num=5)) == 5
    with pytest.raises(DataSchemaTooLarge, match="6 columns, more than max_col_num=5") as info:
        Schema.from_sample(pd.DataFrame(np.zeros((2, 6))), max_col_num=5)
    assert info.value.columns == 6
    for bad in (0, -1, 2.5, "10", True, None):
        with pytest.raises(SchemaSampleError, match="max_col_num must be a positive int"):
            Schema.from_sample(wide, max_col_num=bad)


def test_default_max_col_num_accepts_2000_columns():
    sample = pd.DataFrame(np.ones((3, 2000)))
    assert len(Schema.from_sample(sample)) == 2000
    with pytest.raises(DataSchemaTooLarge):
        Schema.from_sample(pd.DataFrame(np.ones((3, 2001))))


def test_max_col_num_skips_the_schema_with_a_warning_and_prepares(iris, offline, tmp_path):
    from ocimodel.metadata.prepared import read_metadata
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


def test_schema_for_catalog_small_and_large(tmp_path):
    small = Schema.from_sample(pd.DataFrame({"a": [1, 2]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert schema_for_catalog(small, str(tmp_path)) == small.to_json()
    assert list(tmp_path.iterdir()) == []
    large = Schema.from_sample(pd.DataFrame(np.ones((2, 200))))
    assert large.size() > SCHEMA_MAX_BYTES
    with pytest.warns(SchemaSizeWarning, match=r"saved as .*output_schema.json"):
        result = schema_for_catalog(large, str(tmp_path), "output_schema.json")
    assert result is None
    assert Schema.from_file(tmp_path / "output_schema.json") == large
    assert schema_for_catalog(None, str(tmp_path)) is None
    with pytest.raises(SchemaSampleError, match="not an existing folder"):
        schema_for_catalog(large, str(tmp_path / "missing"))


def test_schema_size_boundary(tmp_path):
    schema = Schema.from_sample(pd.DataFrame({"a": [1, 2]}))
    size = schema.size()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert schema_for_catalog(schema, str(tmp_path), max_bytes=size) is not None
    with pytest.warns(SchemaSizeWarning):
        assert schema_for_catalog(schema, str(tmp_path), max_bytes=size - 1) is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must be a dict"),
        ('{"schema": {}}', "must be a dict"),
        ('{"schema": [{"name": "a"}]}', "lacks"),
        ('{"schema": [1]}', "must be a dict"),
        (
            '{"schema": [{"name": "a", "dtype": "int", "feature_type": "integer", "order": 0,'
            ' "colour": 1}]}',
            "unknown fields",
        ),
        (
            '{"schema": [{"name": "a", "dtype": "i", "feature_type": "integer", "order": 0},'
            ' {"name": "a", "dtype": "i", "feature_type": "integer", "order": 1}]}',
            "duplicated",
        ),
    ],
)
def test_bad_schema_json_raises(text, words):
    with pytest.raises(SchemaFormatError, match=words):
        Schema.from_json(text)


def test_from_file_missing(tmp_path):
    with pytest.raises(SchemaFormatError, match="No schema file"):
        Schema.from_file(tmp_path / "absent.json")


def test_infinite_values_stay_valid_json():
    schema = Schema.from_sample(pd.DataFrame({"x": [1.0, np.inf, -np.inf, np.nan]}))
    stats = schema["x"].domain.stats
    assert stats["max"] == "inf" and stats["min"] == "-inf" and stats["missing"] == 1
    assert Schema.from_json(schema.to_json()) == schema
