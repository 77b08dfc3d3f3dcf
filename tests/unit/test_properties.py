"""ModelProperties: filled from the environment, saved to and read from a config file with
string properties kept as text, and a property of the wrong type a typed error, raised by
``prepare`` before anything is written."""

from __future__ import annotations

import pytest
from prepare_support import PREPARE_ARGS, Doubler

from ocimodel.generic_model import GenericModel
from ocimodel.pipeline import prepare_artifact
from ocimodel.properties import ModelProperties, PropertyTypeError


def test_model_properties_env_and_config_round_trip(monkeypatch, tmp_path):
    monkeypatch.setenv("PROJECT_OCID", "ocid1.datascienceproject.oc1..p")
    monkeypatch.setenv("NB_SESSION_COMPARTMENT_OCID", "ocid1.compartment.oc1..c")
    props = ModelProperties(deployment_instance_count=2, overwrite_existing_artifact=True)
    props.with_env()
    assert props.project_id == "ocid1.datascienceproject.oc1..p"
    assert props.compartment_id == "ocid1.compartment.oc1..c"
    path = str(tmp_path / "props.ini")
    props.to_config(path, "DEV")
    with pytest.raises(FileExistsError, match="force_overwrite"):
        props.to_config(path, "DEV")
    loaded = ModelProperties.from_config(path, "DEV")
    assert loaded == props
    with pytest.raises(ValueError, match="DEV"):
        ModelProperties.from_config(path, "PROD")
    with pytest.raises(ValueError, match="deployment_ocpus"):
        props.with_prop("deployment_cpus", 1)


def test_config_round_trip_keeps_string_properties_as_text(tmp_path):
    props = ModelProperties(training_python_version="3.10", project_id="123")
    path = str(tmp_path / "props.ini")
    props.to_config(path, "DEV")
    loaded = ModelProperties.from_config(path, "DEV")
    assert loaded.training_python_version == "3.10" and loaded.project_id == "123"


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
