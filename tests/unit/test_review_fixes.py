"""Refused pickling input serializers, safe config errors, DNS retries, folders in the way,
no leaked temporary artifact folders and typed model properties."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest

from ocimodel.generic_model import GenericModel
from ocimodel.oci import storage
from ocimodel.oci.auth import OCIAuthError, api_keys
from ocimodel.prepare import generate_score_py, prepare_artifact, serialize_model
from ocimodel.properties import ModelProperties, PropertyTypeError
from ocimodel.runtime import ArtifactFileExistsError, write_bytes_atomic, write_converging
from ocimodel.serde import (
    SERDE,
    CloudpickleModelSaveSerializer,
    CustomInputSerializer,
    InputSerializerRefusedError,
    JoblibModelSaveSerializer,
    get_model_input_serializer,
    get_model_save_serializer,
)

MY_PACK = "oci://my-packs@myns/conda_environments/cpu/mine/1.0/mine_v1"
PREPARE_ARGS = {"inference_conda_env": MY_PACK, "inference_python_version": "3.10"}


class Doubler:
    def predict(self, data):
        return [2 * x for x in data]


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


# --- 1. input serializers that would unpickle request bodies ---------------------------------


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


# --- 2. OCI config errors that must not quote the file -----------------------------------------


def test_malformed_config_error_names_the_line_number_not_its_secret(tmp_path):
    config = tmp_path / "config"
    config.write_text(
        "[DEFAULT]\nuser=ocid1.user.oc1..u\npass_phrase hunter2-s3cret\nregion=us-ashburn-1\n"
    )
    with pytest.raises(OCIAuthError) as info:
        api_keys(oci_config_location=str(config), profile="DEFAULT")
    message = str(info.value)
    assert "hunter2" not in message and "s3cret" not in message
    assert str(config) in message and "'DEFAULT'" in message and "line 3" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_config_without_a_section_header_hides_the_line(tmp_path):
    config = tmp_path / "config"
    config.write_text("key_content=-----BEGIN PRIVATE KEY-----topsecret\n")
    with pytest.raises(OCIAuthError, match="line 1") as info:
        api_keys(oci_config_location=str(config), profile="DEFAULT")
    assert "topsecret" not in str(info.value)


def test_missing_key_file_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "keys" / "absent.pem"
    config = tmp_path / "config"
    config.write_text(
        "[DEV]\nuser=ocid1.user.oc1..u\nfingerprint=aa:bb\ntenancy=ocid1.tenancy.oc1..t\n"
        f"region=us-ashburn-1\nkey_file={missing}\npass_phrase=hunter2\n"
    )
    with pytest.raises(OCIAuthError) as info:
        api_keys(oci_config_location=str(config), profile="DEV")
    message = str(info.value)
    assert str(missing) in message and "'DEV'" in message and "key_file" in message
    assert "hunter2" not in message
    assert info.value.__suppress_context__


# --- 3. failed DNS lookups are retried ---------------------------------------------------------


def test_a_host_that_failed_to_resolve_is_looked_up_again(monkeypatch):
    host = "objectstorage.flaky.example"
    calls = []

    def flaky(name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    storage._RESOLVED_HOSTS.discard(host)
    with pytest.raises(storage.EndpointNotResolvableError):
        storage.ensure_endpoint_resolves(f"https://{host}")
    storage.ensure_endpoint_resolves(f"https://{host}")
    storage.ensure_endpoint_resolves(f"https://{host}")
    assert calls == [host, host]  # the success is remembered, the failure was not
    storage._RESOLVED_HOSTS.discard(host)


# --- 4. a folder where an artifact file goes ---------------------------------------------------


@pytest.mark.parametrize("writer", [write_bytes_atomic, write_converging])
def test_atomic_writers_refuse_a_folder_at_the_target(tmp_path, writer):
    target = tmp_path / "score.py"
    target.mkdir()
    with pytest.raises(ArtifactFileExistsError, match="Remove that folder") as info:
        writer(str(target), b"x")
    assert str(target) in str(info.value)
    assert target.is_dir() and os.listdir(tmp_path) == ["score.py"]


@pytest.mark.parametrize("name", ["score.py", "runtime.yaml"])
def test_prepare_refuses_a_folder_named_like_an_artifact_file(tmp_path, name):
    (tmp_path / name).mkdir()
    for force in (False, True):
        with pytest.raises(ArtifactFileExistsError, match="Remove that folder"):
            prepare_artifact(Doubler(), str(tmp_path), force_overwrite=force, **PREPARE_ARGS)
        assert os.listdir(tmp_path) == [name] and (tmp_path / name).is_dir()


def test_model_file_folder_is_refused_even_with_force_overwrite(tmp_path):
    (tmp_path / "model.pkl").mkdir()
    for force in (False, True):
        with pytest.raises(ArtifactFileExistsError, match="Remove that folder") as info:
            serialize_model(Doubler(), str(tmp_path), force_overwrite=force)
        assert str(tmp_path / "model.pkl") in str(info.value)
        assert os.listdir(tmp_path) == ["model.pkl"]
    with pytest.raises(ArtifactFileExistsError, match="Remove that folder"):
        prepare_artifact(Doubler(), str(tmp_path), force_overwrite=True, **PREPARE_ARGS)
    assert os.listdir(tmp_path) == ["model.pkl"]


# --- 5. no temporary artifact folder for a model that cannot be built --------------------------


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


# --- 6. model properties of the wrong type ------------------------------------------------------


def test_string_properties_of_another_type_are_typed_errors(tmp_path):
    with pytest.raises(PropertyTypeError) as info:
        prepare_artifact(
            Doubler(), str(tmp_path / "art"), properties={"compartment_id": 5}, **PREPARE_ARGS
        )
    message = str(info.value)
    assert "'compartment_id'" in message and "5" in message and "a string" in message
    assert isinstance(info.value, TypeError)
    assert not (tmp_path / "art").exists()
    with pytest.raises(PropertyTypeError, match="'project_id'"):
        ModelProperties().with_prop("project_id", 12)
    with pytest.raises(PropertyTypeError, match="'inference_python_version'.*float"):
        ModelProperties.from_dict({"inference_python_version": 3.1})
    props = ModelProperties.from_dict(
        {"compartment_id": "ocid1.compartment.oc1..c", "training_script_path": tmp_path}
    )
    assert props.training_script_path == tmp_path
    assert ModelProperties.from_dict({"deployment_instance_count": 2}).deployment_instance_count


def test_generic_model_prepare_checks_property_types_before_writing(tmp_path):
    model = GenericModel(estimator=Doubler(), artifact_dir=str(tmp_path / "art"))
    with pytest.raises(PropertyTypeError, match="'training_python_version'"):
        model.prepare(training_python_version=3.10, **PREPARE_ARGS)
    assert not (tmp_path / "art").exists()


def test_config_round_trip_keeps_string_properties_as_text(tmp_path):
    props = ModelProperties(training_python_version="3.10", project_id="123")
    path = str(tmp_path / "props.ini")
    props.to_config(path, "DEV")
    loaded = ModelProperties.from_config(path, "DEV")
    assert loaded.training_python_version == "3.10" and loaded.project_id == "123"
