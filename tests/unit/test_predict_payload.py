"""payload_of: the one request body verify and predict send, for values, bytes and images, with
typed errors for what cannot be sent; and verify running score.py on exactly that body."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from score_artifacts import make_toy, prepare

from ocimodel.errors import OcimodelError, SerializeInputNotImplementedError
from ocimodel.predict import (
    OCTET_STREAM,
    ImageNotFoundError,
    PredictInputError,
    payload_of,
)
from ocimodel.serde import get_model_input_serializer
from ocimodel.verify import request_of, verify_artifact

ECHO_SCORE = """
def load_model():
    return None

def predict(data, model=None):
    if isinstance(data, (bytes, bytearray)):
        return {"bytes": len(data), "head": bytes(data[:4]).hex()}
    return {"echo": data}
"""


def test_values_go_through_the_input_serializer_or_plain_json():
    body, kind = payload_of({"x": [1, 2]})
    assert (json.loads(body), kind) == ({"x": [1, 2]}, "application/json")
    array = np.arange(3)
    body, kind = payload_of(array)
    assert kind == "application/json"
    decoded = get_model_input_serializer("json").deserialize(body)
    np.testing.assert_array_equal(decoded, array)
    assert payload_of(3, auto_serialize_data=False) == (b"3", "application/json")
    with pytest.raises(SerializeInputNotImplementedError, match="auto_serialize_data=True"):
        payload_of(array, auto_serialize_data=False)
    assert request_of is payload_of  # verify's name for the same path


def test_bytes_pass_through_and_content_type_is_honoured():
    assert payload_of(b"\x00\x01") == (b"\x00\x01", OCTET_STREAM)
    assert payload_of(bytearray(b"ab"), content_type="image/png") == (b"ab", "image/png")
    assert payload_of(memoryview(b"ab"), auto_serialize_data=False) == (b"ab", OCTET_STREAM)
    assert payload_of("a,b\n1,2", content_type="text/csv") == (b"a,b\n1,2", "text/csv")
    body, kind = payload_of({"k": 1}, content_type="application/json; charset=utf-8")
    assert (json.loads(body), kind) == ({"k": 1}, "application/json; charset=utf-8")


def test_images_are_read_from_paths_and_uris_unchanged(tmp_path):
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    assert payload_of(image=str(picture)) == (picture.read_bytes(), OCTET_STREAM)
    assert payload_of(image=picture, content_type="image/png")[1] == "image/png"
    assert payload_of(image=f"file://{picture}")[0] == picture.read_bytes()
    memory = "memory://ocimodel-test/picture.png"
    import fsspec

    with fsspec.open(memory, "wb") as fh:
        fh.write(b"in memory")
    assert payload_of(image=memory, storage_options={})[0] == b"in memory"


def test_bad_inputs_are_typed_value_errors_that_say_what_to_pass(tmp_path):
    cases = [
        ({}, "Nothing to predict on"),
        ({"data": 1, "image": "x.png"}, "either data= or image="),
        ({"image": 3}, "PIL.Image or a path"),
        ({"data": 1, "content_type": ""}, "content_type"),
    ]
    for kwargs, message in cases:
        with pytest.raises(PredictInputError, match=message) as raised:
            payload_of(**kwargs)
        assert isinstance(raised.value, ValueError) and isinstance(raised.value, OcimodelError)
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageNotFoundError, match="does not exist") as raised:
        payload_of(image=str(missing))
    assert isinstance(raised.value, FileNotFoundError) and str(missing) in str(raised.value)
    with pytest.raises(ImageNotFoundError, match="cannot be read"):
        payload_of(image=str(tmp_path))


def test_an_image_larger_than_a_deployment_accepts_is_refused_without_reading_it_all(tmp_path):
    from ocimodel.oci.predict import MAX_PAYLOAD_BYTES

    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(MAX_PAYLOAD_BYTES + 4096)
    with pytest.raises(PredictInputError, match="larger than 10 MB"):
        payload_of(image=str(big))


def test_pil_is_never_imported_for_a_path(tmp_path):
    picture = tmp_path / "p.bin"
    picture.write_bytes(b"x")
    before = "PIL" in sys.modules
    payload_of(image=str(picture))
    assert ("PIL" in sys.modules) == before


@pytest.mark.parametrize("in_process", [True, False])
def test_verify_runs_score_py_on_the_same_payload(tmp_path, in_process):
    prepare(tmp_path, make_toy())
    assert verify_artifact(tmp_path, 2, in_process=in_process) == {"prediction": 4}
    echo = tmp_path / "echo"
    echo.mkdir()
    (echo / "score.py").write_text(ECHO_SCORE)
    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG-body")
    assert verify_artifact(echo, image=str(picture), in_process=in_process) == {
        "bytes": 9,
        "head": "89504e47",
    }
    assert verify_artifact(echo, b"abc", in_process=in_process)["bytes"] == 3
    with pytest.raises(PredictInputError):
        verify_artifact(echo, in_process=in_process)
