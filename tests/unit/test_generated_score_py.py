"""The generated score.py: standalone, manifest-checked, decoding plain and tagged payloads."""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from score_artifacts import make_toy, prepare

from ocimodel import codec
from ocimodel.artifact import ModelArtifact
from ocimodel.artifact.archive import safe_extract
from ocimodel.errors import ArtifactFileExistsError, PrepareError
from ocimodel.layout import MANIFEST_NAME as MANIFEST_FILE_NAME
from ocimodel.score import ScoreTemplateError, generate_score_py, render_score_py
from ocimodel.serde import (
    MODEL_INPUT_SERDE_FILE_NAME,
    SERDE,
    get_model_input_serializer,
)


def make_echo():
    class Echo:
        def predict(self, x):
            return {"type": type(x).__name__, "value": x}

    return Echo()


def run_score(folder: Path, calls: str) -> dict:
    """Run score.py in a fresh isolated interpreter where ocimodel cannot be imported."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["ocimodel"] = None
        sys.path.insert(0, {str(folder)!r})
        import score
        out = {{}}
        {calls}
        out["numpy_loaded"] = "numpy" in sys.modules
        out["pandas_loaded"] = "pandas" in sys.modules
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=folder
    )
    if proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_rendered_score_inlines_the_codec_verbatim_and_imports_no_ocimodel():
    source = render_score_py(model_file_name="model.pkl")
    tree = ast.parse(source)
    for function in (codec.decode, codec.encode, codec.to_jsonable, codec._decode_ndarray):
        assert inspect.getsource(function) in source
    imports = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name and name.startswith("ocimodel") for name in imports)
    assert {"numpy", "pandas"}.isdisjoint(
        alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    )
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"load_model", "predict"} <= names
    assert "MODEL_FILE_NAME = 'model.pkl'" in source and MANIFEST_FILE_NAME in source


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model_file_name": "dir/model.pkl"}, "bare file name"),
        ({"model_file_name": ""}, "non-empty"),
        ({"model_file_name": "m.pkl", "model_serializer": "torch"}, "'torch' has no score.py"),
        ({"model_file_name": "m.pkl", "input_serializer": "cloudpickle"}, "no score.py decoder"),
        ({"model_file_name": "m.pkl", "template": "nope.jinja2"}, "score_py_uri"),
    ],
)
def test_bad_render_options_are_typed_errors(kwargs, match):
    with pytest.raises(ScoreTemplateError, match=match):
        render_score_py(**kwargs)


def test_file_names_with_quotes_render_as_valid_python():
    source = render_score_py(model_file_name='it\'s "odd".pkl')
    assert "MODEL_FILE_NAME = 'it\\'s \"odd\".pkl'" in source
    ast.parse(source)


def test_onnx_serializer_selects_the_onnx_template():
    source = render_score_py(model_file_name="model.onnx", model_serializer="onnx")
    assert "onnxruntime.InferenceSession" in source
    assert "onnxruntime" not in render_score_py(model_file_name="model.pkl")


def test_score_runs_without_ocimodel_and_only_loads_numpy_when_needed(tmp_path):
    prepare(tmp_path, make_toy(), file_name="toy_model.pkl")
    out = run_score(
        tmp_path,
        """
        out["plain"] = score.predict(3)
        out["raw_json_body"] = score.predict(b"5") == {"prediction": 25}
        out["cached"] = score.load_model() is score.load_model()
        """,
    )
    assert out == {
        "plain": {"prediction": 9},
        "raw_json_body": True,
        "cached": True,
        "numpy_loaded": False,
        "pandas_loaded": False,
    }


def test_score_decodes_tagged_payloads_and_returns_plain_json(tmp_path):
    prepare(tmp_path, make_echo())
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    payloads = {
        "frame": json.loads(codec.dumps(frame)),
        "array": json.loads(codec.dumps(np.array([[1.5, np.nan]], dtype=np.float32))),
        "raw_body": codec.dumps(pd.Series([1, 2], name="s")),
        "plain": {"k": [1, None]},
    }
    out = run_score(
        tmp_path,
        f"""
        payloads = json.loads({json.dumps(json.dumps(payloads))})
        payloads["raw_body"] = payloads["raw_body"].encode()
        for name, payload in payloads.items():
            out[name] = score.predict(payload)["prediction"]
        out["strict"] = json.dumps(out, allow_nan=False) is not None
        """,
    )
    assert out["frame"] == {"type": "DataFrame", "value": [{"a": 1, "b": "x"}, {"a": 2, "b": None}]}
    assert out["array"] == {"type": "ndarray", "value": [[1.5, None]]}
    assert out["raw_body"] == {"type": "Series", "value": [1, 2]}
    assert out["plain"] == {"type": "dict", "value": {"k": [1, None]}}
    assert out["strict"] is True


def write_manifest(folder: Path, name: str, sha256: str) -> None:
    doc = {"version": 1, "files": {name: {"sha256": sha256, "size": 0}}}
    (folder / MANIFEST_FILE_NAME).write_text(json.dumps(doc))


def test_model_matching_the_manifest_loads(tmp_path):
    digest = prepare(tmp_path, make_toy())
    write_manifest(tmp_path, "model.pkl", digest)
    assert run_score(tmp_path, 'out["p"] = score.predict(4)')["p"] == {"prediction": 16}


def test_tampered_model_fails_naming_the_file_and_both_digests(tmp_path):
    digest = prepare(tmp_path, make_toy())
    write_manifest(tmp_path, "model.pkl", digest)
    with open(tmp_path / "model.pkl", "ab") as fh:
        fh.write(b"tampered")
    actual = hashlib.sha256((tmp_path / "model.pkl").read_bytes()).hexdigest()
    with pytest.raises(AssertionError) as info:
        run_score(tmp_path, "pass")
    message = str(info.value)
    assert "ModelIntegrityError: model.pkl does not match ocimodel-manifest.json" in message
    assert digest in message and actual in message


def test_manifest_that_does_not_list_the_model_is_not_a_failure(tmp_path):
    prepare(tmp_path, make_toy())
    write_manifest(tmp_path, "other.bin", "0" * 64)
    assert run_score(tmp_path, 'out["p"] = score.predict(2)')["p"] == {"prediction": 4}


def test_missing_model_file_error_lists_the_artifact(tmp_path):
    prepare(tmp_path, make_toy())
    (tmp_path / "model.pkl").rename(tmp_path / "renamed.pkl")
    with pytest.raises(AssertionError, match="model.pkl is not in the artifact.*renamed.pkl"):
        run_score(tmp_path, "pass")


def test_joblib_model_loads_with_joblib(tmp_path):
    from sklearn.linear_model import LinearRegression

    X = np.arange(20.0).reshape(10, 2)
    model = LinearRegression().fit(X, X.sum(axis=1))
    prepare(tmp_path, model, serializer="joblib")
    assert "joblib.load" in (tmp_path / "score.py").read_text()
    out = run_score(tmp_path, 'out["p"] = score.predict([[1.0, 2.0]])')
    assert out["p"]["prediction"] == pytest.approx([3.0])


def make_custom_serdes():
    class ScaleModelSERDE(SERDE):
        name = "scale"

        def serialize(self, data):
            return json.dumps(data).encode()

        def deserialize(self, data):
            factor = json.loads(data)

            class Scale:
                def predict(self, values):
                    return [v * factor for v in values]

            return Scale()

    class CsvInputSERDE(SERDE):
        name = "csv"

        def serialize(self, data):
            return ",".join(str(v) for v in data)

        def deserialize(self, data):
            text = data.decode() if isinstance(data, bytes) else data
            return [int(v) for v in text.split(",")]

    return ScaleModelSERDE(), CsvInputSERDE()


def test_custom_model_and_input_serdes_work_without_ocimodel(tmp_path):
    model_serde, input_serde = make_custom_serdes()
    prepare(
        tmp_path,
        10,
        serializer=model_serde,
        file_name="scale.json",
        model_input_serializer=input_serde,
    )
    assert (tmp_path / MODEL_INPUT_SERDE_FILE_NAME).is_file()
    body, ctype = get_model_input_serializer(input_serde).to_request([1, 2])
    assert (body, ctype) == (b"1,2", "text/plain")
    out = run_score(tmp_path, f'out["p"] = score.predict({body!r})')
    assert out["p"] == {"prediction": [10, 20]}


def test_score_py_uri_copies_a_custom_score_file(tmp_path):
    custom = tmp_path / "mine.py"
    custom.write_text("def load_model():\n    return 1\n\ndef predict(data, model=None):\n")
    custom.write_text(custom.read_text() + "    return {'prediction': 'custom'}\n")
    artifact = tmp_path / "artifact"
    generate_score_py(str(artifact), model_file_name="model.pkl", score_py_uri=str(custom))
    assert (artifact / "score.py").read_text() == custom.read_text()
    with pytest.raises(PrepareError, match="is not a file"):
        generate_score_py(
            str(artifact), model_file_name="model.pkl", score_py_uri=str(tmp_path / "no")
        )
    with pytest.raises(PrepareError, match="is not a file"):
        generate_score_py(str(artifact), model_file_name="model.pkl", score_py_uri=str(tmp_path))
    assert sorted(p.name for p in artifact.iterdir()) == ["score.py"]
    with pytest.raises(PrepareError, match="is a file"):
        generate_score_py(str(custom), model_file_name="model.pkl")


def test_rewriting_score_py_converges_and_refuses_different_content(tmp_path):
    generate_score_py(str(tmp_path), model_file_name="model.pkl")
    first = (tmp_path / "score.py").read_text()
    generate_score_py(str(tmp_path), model_file_name="model.pkl")
    assert (tmp_path / "score.py").read_text() == first
    with pytest.raises(ArtifactFileExistsError, match="force_overwrite=True"):
        generate_score_py(str(tmp_path), model_file_name="other.pkl")
    assert (tmp_path / "score.py").read_text() == first
    generate_score_py(str(tmp_path), model_file_name="other.pkl", force_overwrite=True)
    assert "'other.pkl'" in (tmp_path / "score.py").read_text()


def test_artifact_prepare_score_py_writes_what_generate_score_py_writes(tmp_path):
    art = ModelArtifact(str(tmp_path / "art"), model_file_name="model.joblib")
    art.prepare_score_py(model_save_serializer="joblib")
    generate_score_py(
        str(tmp_path / "direct"), model_file_name="model.joblib", model_save_serializer="joblib"
    )
    text = (tmp_path / "art" / "score.py").read_text()
    assert text == (tmp_path / "direct" / "score.py").read_text()
    assert "joblib.load" in text


def zipped_and_extracted(folder: Path, model, tmp_path: Path, **kwargs) -> Path:
    """Prepares ``folder`` (model, score.py, runtime.yaml), zips it and extracts the zip."""
    prepare(folder, model, **kwargs)
    art = ModelArtifact(str(folder), ignore_conda_error=True)
    art.prepare_runtime_yaml(None, inference_python_version="3.11")
    target = tmp_path / "extracted"
    safe_extract(art.zip(str(tmp_path / "artifact.zip")), str(target))
    return target


def test_zipped_artifact_carries_a_manifest_that_score_py_checks(tmp_path):
    folder = tmp_path / "art"
    folder.mkdir()
    extracted = zipped_and_extracted(folder, make_toy(), tmp_path)
    assert not (folder / MANIFEST_FILE_NAME).exists()
    doc = json.loads((extracted / MANIFEST_FILE_NAME).read_text())
    model_bytes = (extracted / "model.pkl").read_bytes()
    assert doc["files"] == {
        "model.pkl": {"sha256": hashlib.sha256(model_bytes).hexdigest(), "size": len(model_bytes)}
    }
    assert run_score(extracted, 'out["p"] = score.predict(4)')["p"] == {"prediction": 16}
    with open(extracted / "model.pkl", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(AssertionError, match="ModelIntegrityError: model.pkl does not match"):
        run_score(extracted, "pass")


def test_zip_replaces_a_stale_manifest_and_covers_serde_pickles(tmp_path):
    import zipfile

    folder = tmp_path / "art"
    folder.mkdir()
    write_manifest(folder, "old.pkl", "0" * 64)
    model_serde, input_serde = make_custom_serdes()
    extracted = zipped_and_extracted(
        folder, 3, tmp_path, serializer=model_serde, model_input_serializer=input_serde
    )
    with zipfile.ZipFile(tmp_path / "artifact.zip") as zf:
        names = zf.namelist()
    assert names.count(MANIFEST_FILE_NAME) == 1 and names[-1] == MANIFEST_FILE_NAME
    files = json.loads((extracted / MANIFEST_FILE_NAME).read_text())["files"]
    assert sorted(files) == ["model.bin", "model_input_serde.pkl", "model_save_serde.pkl"]
    for name, entry in files.items():
        assert entry["sha256"] == hashlib.sha256((extracted / name).read_bytes()).hexdigest()
    body, _ = get_model_input_serializer(input_serde).to_request([1, 2])
    assert run_score(extracted, f'out["p"] = score.predict({body!r})')["p"] == {
        "prediction": [3, 6]
    }


def test_score_py_uri_from_object_storage(local_oci, tmp_path):
    import oci

    from ocimodel.oci.auth import make_client
    from ocimodel.oci.storage import copy_uri

    auth = local_oci.auth()
    client = make_client(oci.object_storage.ObjectStorageClient, auth=auth)
    namespace = client.get_namespace().data
    bucket = f"score-{uuid.uuid4().hex[:10]}"
    details = oci.object_storage.models.CreateBucketDetails(
        name=bucket, compartment_id=local_oci.config["tenancy"]
    )
    client.create_bucket(namespace, details)
    local = tmp_path / "remote_score.py"
    local.write_text("def predict(data, model=None):\n    return {'prediction': 'remote'}\n")
    uri = f"oci://{bucket}@{namespace}/code/score.py"
    copy_uri(str(local), uri, auth=auth)
    artifact = tmp_path / "artifact"
    generate_score_py(str(artifact), model_file_name="model.pkl", score_py_uri=uri, auth=auth)
    assert (artifact / "score.py").read_text() == local.read_text()
    with pytest.raises(PrepareError, match="is not a file"):
        generate_score_py(
            str(artifact), model_file_name="m.pkl", score_py_uri=uri + ".missing", auth=auth
        )
    assert sorted(p.name for p in artifact.iterdir()) == ["score.py"]
