"""ONNX conversion failures explain nullable/extension dtypes and how to get past them."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from ocimodel.serde import get_model_save_serializer


@pytest.fixture(scope="module")
def nullable_pipeline():
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = pd.DataFrame(
        {
            "count": pd.array([1, 2, 3, 4] * 5, dtype="Int64"),
            "flag": pd.array([True, False] * 10, dtype="boolean"),
        }
    )
    labels = np.array([0, 1, 1, 0] * 5)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.astype("float64"), labels)
    return model, X


def test_nullable_columns_get_a_cast_hint_and_a_clean_message(tmp_path, nullable_pipeline):
    from ocimodel.onnx import OnnxConversionError

    model, X = nullable_pipeline
    serializer = get_model_save_serializer("onnx", X_sample=X)
    with pytest.raises(OnnxConversionError) as info:
        serializer.save(model, tmp_path / "model.onnx")
    message = str(info.value)
    assert ".." not in message
    assert "'count': 'Int64'" in message and "'flag': 'boolean'" in message
    assert "astype('float64')" in message and "initial_types" in message
    assert os.listdir(tmp_path) == []
    fixed = get_model_save_serializer("onnx", X_sample=X.astype("float64"))
    fixed.save(model, tmp_path / "model.onnx")
    session = fixed.load(tmp_path / "model.onnx")
    feeds = {i.name: X[[i.name]].to_numpy(dtype="float32") for i in session.get_inputs()}
    labels = session.run(None, feeds)[0]
    assert labels.tolist() == model.predict(X.astype("float64")).tolist()
