"""Wire codec, input serializers and model save serializers of ocimodel.serde; an input
serializer that would unpickle request bodies is refused wherever it enters (by name or
instance, in prepare, generate_score_py and GenericModel)."""

from __future__ import annotations

import ast
import base64
import datetime
import hashlib
import inspect
import json
import os
import pickle
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prepare_support import PREPARE_ARGS, Doubler

from ocimodel import codec
from ocimodel.errors import (
    MissingExtraError,
    OcimodelError,
    SerializeInputNotImplementedError,
    SerializeModelNotImplementedError,
)
from ocimodel.generic_model import GenericModel
from ocimodel.pipeline import prepare_artifact
from ocimodel.score import generate_score_py
from ocimodel.serde import (
    MODEL_SAVE_SERDE_FILE_NAME,
    SERDE,
    CloudpickleModelSaveSerializer,
    CustomInputSerializer,
    CustomModelSaveSerializer,
    HashingWriter,
    InputSerializerRefusedError,
    JoblibModelSaveSerializer,
    JsonInputSerializer,
    ModelInputSerializerType,
    ModelSerializerType,
    get_model_input_serializer,
    get_model_save_serializer,
    register_model_input_serializer,
    score_loader_of,
    sha256_file,
)


def roundtrip(value):
    return get_model_input_serializer("json").deserialize(codec.dumps(value))


def strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# --- wire codec -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype="<f4").reshape(3, 4),
        np.asfortranarray(np.arange(12, dtype=">i8").reshape(3, 4)),
        np.array([True, False]),
        np.array([1 + 2j, np.nan], dtype=np.complex128),
        np.array(["2024-01-01T00:00:00.000000001", "NaT"], dtype="datetime64[ns]"),
        np.array(["ab", "ßü"], dtype="<U2"),
        np.array([b"ab", b"\x00\xff"], dtype="S2"),
        np.array(3.5, dtype=np.float16),
        np.zeros((0, 3), dtype=np.uint8),
        np.arange(10)[::3],
    ],
)
def test_ndarray_roundtrip_keeps_dtype_shape_and_values(array):
    back = roundtrip(array)
    assert isinstance(back, np.ndarray)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_object_arrays_travel_element_by_element():
    array = np.array([1, "x", None, 2.5, b"b"], dtype=object)
    parsed = json.loads(codec.dumps(array))
    assert parsed[codec.WIRE_TAG] == "ndarray" and "data" not in parsed
    back = roundtrip(array)
    assert back.dtype == object and back.tolist() == array.tolist()


def test_dataframe_roundtrip_preserves_every_dtype_and_index():
    frame = pd.DataFrame(
        {
            "int": [1, 2, 3],
            "float": [1.5, np.nan, 3.0],
            "text": ["a", None, "c"],
            "obj": pd.Series(["a", 1, None], dtype=object),
            "cat": pd.Categorical(["x", "y", "x"], categories=["y", "x"], ordered=True),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "tz": pd.to_datetime(["2024-01-01", None, "2024-01-03"]).tz_localize("UTC"),
            "naive": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "flag": [True, False, True],
        },
        index=pd.Index([10, 10, 12], name="key"),
    )
    back = roundtrip(frame)
    pd.testing.assert_frame_equal(back, frame)
    assert back.dtypes.tolist() == frame.dtypes.tolist()


def test_dataframe_with_multiindex_columns_and_duplicate_names():
    frame = pd.DataFrame(
        [[1, 2.0], [3, 4.0]],
        columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"]),
    )
    pd.testing.assert_frame_equal(roundtrip(frame), frame)
    dup = pd.DataFrame([[1, "a"], [2, "b"]], columns=["c", "c"])
    pd.testing.assert_frame_equal(roundtrip(dup), dup)
    empty = pd.DataFrame(index=pd.RangeIndex(2))
    pd.testing.assert_frame_equal(roundtrip(empty), empty)


def test_series_roundtrip_keeps_name_index_and_dtype():
    series = pd.Series(
        [1.0, 2.0],
        name=("a", 1),
        index=pd.DatetimeIndex(["2024-01-01", "2024-01-02"], tz="Europe/Paris"),
    )
    back = roundtrip(series)
    pd.testing.assert_series_equal(back, series, check_freq=False)
    strings = pd.Series(["a", None], dtype="str", name="s")
    pd.testing.assert_series_equal(roundtrip(strings), strings)


def test_python_values_roundtrip():
    value = {
        "list": [1, 2.5, float("nan"), float("-inf"), None, True],
        "bytes": b"\x00\x01",
        "tuple": (1, (2, 3)),
        3: "int key",
        (1, 2): "tuple key",
        "when": datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2024, 1, 2),
        "delta": datetime.timedelta(days=1, microseconds=5),
        "np": np.float32(1.5),
        "stamp": pd.Timestamp("2024-01-01 12:00:00.123456789", tz="Europe/Paris"),
        "na": pd.NA,
        "nat": pd.NaT,
    }
    back = roundtrip(value)
    assert back.keys() == value.keys()
    assert back["list"][:2] == [1, 2.5] and np.isnan(back["list"][2])
    assert back["list"][3:] == [float("-inf"), None, True]
    for key in ("bytes", "tuple", 3, (1, 2), "when", "day", "delta", "stamp"):
        assert back[key] == value[key] and type(back[key]) is type(value[key])
    assert back["np"] == value["np"] and back["np"].dtype == np.float32
    assert back["na"] is pd.NA and back["nat"] is pd.NaT


def test_plain_json_stays_plain_and_output_is_strict_json():
    assert codec.dumps([[1, 2], [3, 4]]) == "[[1,2],[3,4]]"
    assert json.loads(codec.dumps({"a": "b", "c": [None, True]})) == {"a": "b", "c": [None, True]}
    strict_json(codec.dumps([float("nan"), np.array([np.inf]), pd.Series([np.nan])]))


def test_user_dict_holding_the_tag_key_is_not_mistaken_for_a_tag():
    value = {codec.WIRE_TAG: "ndarray", "shape": "not really"}
    assert roundtrip(value) == value


def test_unsupported_input_is_a_typed_error_naming_the_type_and_fix():
    class Opaque:
        pass

    with pytest.raises(SerializeInputNotImplementedError) as info:
        get_model_input_serializer("json").serialize({"x": Opaque()})
    assert "Opaque" in str(info.value) and "custom SERDE" in str(info.value)


def test_decoder_has_no_pickle_path_and_rejects_forged_payloads():
    tree = ast.parse(inspect.getsource(codec))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported <= {"base64", "datetime", "json", "math", "sys", "typing", "numpy", "pandas"}
    assert "allow_pickle" not in inspect.getsource(codec)
    forged = {codec.WIRE_TAG: "ndarray", "dtype": "|O", "shape": [1], "data": "AAAAAAAAAAA="}
    with pytest.raises(ValueError, match="cannot travel as raw bytes"):
        codec.decode(forged)
    short = {codec.WIRE_TAG: "ndarray", "dtype": "<f8", "shape": [2], "data": "AAAAAAAAAAA="}
    with pytest.raises(ValueError, match="needs 16"):
        codec.decode(short)
    with pytest.raises(ValueError, match="unknown wire tag"):
        codec.decode({codec.WIRE_TAG: "pickle", "data": ""})
    payload = pickle.dumps({"would": "run"})
    encoded = {codec.WIRE_TAG: "bytes", "data": base64.b64encode(payload).decode()}
    assert codec.decode(encoded) == payload


def test_to_jsonable_gives_plain_json():
    out = codec.to_jsonable(
        {
            "array": np.array([1.0, np.nan]),
            1: pd.DataFrame({"x": [1], "y": ["a"]}),
            "stamp": pd.Timestamp("2024-01-01"),
            "scalar": np.int64(7),
            "series": pd.Series([pd.NA], dtype="Int64"),
        }
    )
    assert out == {
        "array": [1.0, None],
        "1": [{"x": 1, "y": "a"}],
        "stamp": "2024-01-01T00:00:00",
        "scalar": 7,
        "series": [None],
    }
    strict_json(json.dumps(out, allow_nan=False))
    with pytest.raises(TypeError, match="no JSON form"):
        codec.to_jsonable(object())


# --- input serializers ------------------------------------------------------------------------


def test_json_is_the_input_serializer_by_name_and_enum():
    assert isinstance(get_model_input_serializer("json"), JsonInputSerializer)
    assert isinstance(
        get_model_input_serializer(ModelInputSerializerType.JSON), JsonInputSerializer
    )
    body, ctype = get_model_input_serializer("json").to_request(np.arange(2))
    assert ctype == "application/json"
    np.testing.assert_array_equal(codec.loads(body), np.arange(2))


@pytest.mark.parametrize("name", ["cloudpickle", "CloudPickle", "pickle"])
def test_pickle_input_serializers_are_refused_naming_json(name):
    with pytest.raises(InputSerializerRefusedError) as info:
        get_model_input_serializer(name)
    assert isinstance(info.value, SerializeInputNotImplementedError)
    assert name in str(info.value) and "'json'" in str(info.value)
    with pytest.raises(InputSerializerRefusedError):
        register_model_input_serializer(name, JsonInputSerializer)


def test_unknown_input_serializer_names_the_known_ones():
    with pytest.raises(SerializeInputNotImplementedError, match="'yaml' is unknown.*json"):
        get_model_input_serializer("yaml")
    with pytest.raises(SerializeInputNotImplementedError, match="not int"):
        get_model_input_serializer(3)


class UpperSERDE(SERDE):
    name = "upper"

    def serialize(self, data):
        return data.upper()

    def deserialize(self, data):
        return data.lower()


def test_custom_input_serde_is_wrapped_and_builds_request_bodies():
    serializer = get_model_input_serializer(UpperSERDE())
    assert isinstance(serializer, CustomInputSerializer) and serializer.name == "upper"
    assert serializer.to_request("abc") == (b"ABC", "text/plain")
    assert serializer.to_request('"x"') == (b'"X"', "application/json")
    assert serializer.deserialize("ABC") == "abc"


# --- input serializers that would unpickle request bodies are refused wherever they enter -----


class PickleNamedSERDE(SERDE):
    name = "Pickle"

    def serialize(self, data):
        return data

    def deserialize(self, data):
        return data


class TextSERDE(SERDE):
    name = "text"

    def serialize(self, data):
        return str(data)

    def deserialize(self, data):
        return data


@pytest.mark.parametrize(
    "serializer",
    [
        CloudpickleModelSaveSerializer(),
        JoblibModelSaveSerializer(),
        get_model_save_serializer(TextSERDE()),
        PickleNamedSERDE(),
        CustomInputSerializer(CloudpickleModelSaveSerializer()),
    ],
    ids=["cloudpickle", "joblib", "custom-save", "named-pickle", "wrapped"],
)
def test_unpickling_input_serializer_instances_are_refused(serializer):
    with pytest.raises(InputSerializerRefusedError) as info:
        get_model_input_serializer(serializer)
    message = str(info.value)
    assert type(serializer).__name__ in message
    assert "'json'" in message and "without unpickling" in message


def test_a_parsing_serde_is_still_accepted():
    assert isinstance(get_model_input_serializer(TextSERDE()), CustomInputSerializer)


def test_prepare_with_a_pickling_input_serializer_writes_nothing(tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(InputSerializerRefusedError, match="CloudpickleModelSaveSerializer"):
        prepare_artifact(
            Doubler(),
            str(folder),
            model_input_serializer=CloudpickleModelSaveSerializer(),
            **PREPARE_ARGS,
        )
    assert not folder.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(InputSerializerRefusedError):
        generate_score_py(
            str(existing),
            model_file_name="model.pkl",
            model_input_serializer=JoblibModelSaveSerializer(),
        )
    assert os.listdir(existing) == []


def test_generic_model_refuses_a_pickling_input_serializer(tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(InputSerializerRefusedError, match="JoblibModelSaveSerializer"):
        GenericModel(
            estimator=Doubler(),
            artifact_dir=str(folder),
            model_input_serializer=JoblibModelSaveSerializer(),
        )
    model = GenericModel(estimator=Doubler(), artifact_dir=str(folder))
    with pytest.raises(InputSerializerRefusedError):
        model.set_model_input_serializer(CloudpickleModelSaveSerializer())
    assert not folder.exists()


# --- model save serializers -------------------------------------------------------------------


def test_model_save_serializers_by_name():
    assert isinstance(get_model_save_serializer("cloudpickle"), CloudpickleModelSaveSerializer)
    assert isinstance(
        get_model_save_serializer(ModelSerializerType.JOBLIB), JoblibModelSaveSerializer
    )
    assert get_model_save_serializer("cloudpickle").file_name == "model.pkl"
    assert get_model_save_serializer("joblib").file_name == "model.joblib"
    with pytest.raises(SerializeModelNotImplementedError, match="'torch' is unknown.*cloudpickle"):
        get_model_save_serializer("torch")


@pytest.mark.parametrize("name", ["cloudpickle", "joblib"])
def test_save_returns_sha256_of_the_written_file_and_loads_back(tmp_path, name):
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    serializer = get_model_save_serializer(name)
    path = tmp_path / serializer.file_name
    digest = serializer.save(model, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    loaded = serializer.load(path)
    np.testing.assert_allclose(loaded.coef_, model.coef_)
    assert sorted(os.listdir(tmp_path)) == [serializer.file_name]
    assert score_loader_of(serializer) == name


def test_failed_save_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle me")

    path = tmp_path / "model.pkl"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="cannot pickle me"):
        get_model_save_serializer("cloudpickle").save([np.zeros(10**6), Unpicklable()], path)
    assert os.listdir(tmp_path) == ["model.pkl"] and path.read_bytes() == b"previous"


def make_custom_model_serde():
    """A SERDE defined locally, as in a notebook, so that cloudpickle stores it by value."""

    class ScaleSERDE(SERDE):
        name = "scale"

        def serialize(self, data):
            return json.dumps({"factor": data}).encode()

        def deserialize(self, data):
            return json.loads(data)["factor"]

    return ScaleSERDE()


def test_custom_model_serde_writes_model_and_companion(tmp_path):
    serde = make_custom_model_serde()
    serializer = get_model_save_serializer(serde)
    assert isinstance(serializer, CustomModelSaveSerializer) and serializer.name == "scale"
    assert score_loader_of(serializer) == "custom"
    digest = serializer.save(7, tmp_path / "model.bin")
    assert digest == sha256_file(tmp_path / "model.bin")
    assert serializer.load(tmp_path / "model.bin") == 7
    with open(tmp_path / MODEL_SAVE_SERDE_FILE_NAME, "rb") as fh:
        assert pickle.load(fh).deserialize(b'{"factor": 2}') == 2


def test_custom_serde_returning_non_bytes_is_typed_and_leaves_nothing(tmp_path):
    class Bad(SERDE):
        def serialize(self, data):
            return 42

        def deserialize(self, data):
            return data

    with pytest.raises(SerializeModelNotImplementedError, match="returned int.*bytes or str"):
        get_model_save_serializer(Bad()).save("m", tmp_path / "model.bin")
    assert os.listdir(tmp_path) == []
    with pytest.raises(SerializeModelNotImplementedError, match="not list"):
        get_model_save_serializer([1])


def test_hashing_writer_digest_matches_content_for_every_buffer_kind(tmp_path):
    fortran = np.asfortranarray(np.arange(300_000, dtype=np.float64).reshape(600, 500))
    chunks = [b"abc", bytearray(b"def"), memoryview(b"ghi"), pickle.PickleBuffer(fortran)]
    path = tmp_path / "out.bin"
    with open(path, "wb") as raw:
        writer = HashingWriter(raw, limit=1024)
        for chunk in chunks * 20:
            writer.write(chunk)
        digest = writer.finish()
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    model_path = tmp_path / "model.pkl"
    digest = get_model_save_serializer("cloudpickle").save({"w": fortran}, model_path)
    assert digest == sha256_file(model_path)
    np.testing.assert_array_equal(pickle.loads(model_path.read_bytes())["w"], fortran)


def test_save_streams_without_a_copy_of_the_model_in_memory(tmp_path):
    model = {"weights": np.random.default_rng(0).random(8_000_000)}  # 64 MB
    tracemalloc.start()
    try:
        get_model_save_serializer("cloudpickle").save(model, tmp_path / "model.pkl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"save() allocated {peak} bytes for a 64 MB model"


# --- onnx extra -------------------------------------------------------------------------------


def test_onnx_without_the_extra_is_a_typed_error_naming_it(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        for name in ("skl2onnx", "onnx", "onnxruntime"):
            sys.modules[name] = None
        from ocimodel.errors import MissingExtraError
        from ocimodel.serde import get_model_save_serializer
        try:
            get_model_save_serializer("onnx")
        except MissingExtraError as exc:
            print("MissingExtraError:", exc, "| missing:", ",".join(exc.missing))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("MissingExtraError:") and "pip install 'ocimodel[onnx]'" in out
    assert "as_onnx=True" in out and "skl2onnx,onnx,onnxruntime" in out
    assert issubclass(MissingExtraError, OcimodelError)


def test_onnx_serializer_converts_sklearn_and_rejects_bad_input(tmp_path):
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    from ocimodel.onnx import OnnxConversionError

    X = np.arange(20.0, dtype=np.float32).reshape(10, 2)
    model = LinearRegression().fit(X, X.sum(axis=1))
    serializer = get_model_save_serializer("onnx")
    assert serializer.file_name == "model.onnx" and score_loader_of(serializer) == "onnx"
    digest = serializer.save(model, tmp_path / "model.onnx")
    assert digest == sha256_file(tmp_path / "model.onnx")
    session = serializer.load(tmp_path / "model.onnx")
    out = session.run(None, {session.get_inputs()[0].name: X[:3]})[0]
    np.testing.assert_allclose(out.ravel(), model.predict(X[:3]), rtol=1e-5)
    with pytest.raises(OnnxConversionError, match="initial_types entry"):
        get_model_save_serializer("onnx", initial_types=[("x", "float")]).save(
            model, tmp_path / "bad.onnx"
        )
    with pytest.raises(OnnxConversionError, match="not one"):
        get_model_save_serializer("onnx").save(object(), tmp_path / "bad.onnx")
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]
    typed = get_model_save_serializer("onnx", initial_types=[("x", FloatTensorType([None, 2]))])
    typed.save(model, tmp_path / "typed.onnx")
    assert [i.name for i in typed.load(tmp_path / "typed.onnx").get_inputs()] == ["x"]


def test_hashing_writer_is_used_for_files_under_a_path_object(tmp_path):
    path = Path(tmp_path) / "m.pkl"
    assert get_model_save_serializer("cloudpickle").save([1, 2], str(path)) == sha256_file(path)


@pytest.mark.parametrize("name", ["cloudpickle", "joblib"])
def test_unpicklable_model_raises_typed_error_and_leaves_nothing(tmp_path, name):
    import threading

    from ocimodel.errors import SerializeModelNotImplementedError
    from ocimodel.serde import ModelNotPicklableError, get_model_save_serializer

    class Locked:
        def __init__(self):
            self.lock = threading.Lock()

    target = tmp_path / "model.bin"
    with pytest.raises(ModelNotPicklableError) as caught:
        get_model_save_serializer(name).save(Locked(), target)
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, SerializeModelNotImplementedError)
    message = str(caught.value)
    assert "Locked" in message and repr(name) in message and "lock" in message
    assert "model_save_serializer" in message
    assert os.listdir(tmp_path) == []
