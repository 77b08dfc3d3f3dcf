"""ModelProperties and BaseProperties against the reference: every field and its default, typed
with_prop/with_dict, with_env's variables and fallbacks, with_config, and INI round trips of
every type through from_config/to_config (the oci:// round trip is an integration test)."""

from __future__ import annotations

import configparser
import dataclasses
import os
import pathlib
from typing import Any

import pytest

from ocimodel.errors import OcimodelError
from ocimodel.properties import (
    BaseProperties,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigProfileExistsError,
    ConfigProfileNotFoundError,
    ModelProperties,
    PropertiesArgumentError,
    PropertyTypeError,
    UnknownPropertyError,
    check_property_types,
)

# The signature of ads.model.model_properties.ModelProperties, in the reference's order.
REFERENCE_FIELDS = {
    "inference_conda_env": "str",
    "inference_python_version": "str",
    "training_conda_env": "str",
    "training_python_version": "str",
    "training_resource_id": "str",
    "training_script_path": "str",
    "training_id": "str",
    "compartment_id": "str",
    "project_id": "str",
    "bucket_uri": "str",
    "remove_existing_artifact": "bool",
    "overwrite_existing_artifact": "bool",
    "deployment_instance_shape": "str",
    "deployment_instance_subnet_id": "str",
    "deployment_instance_private_endpoint_id": "str",
    "deployment_instance_count": "int",
    "deployment_bandwidth_mbps": "int",
    "deployment_log_group_id": "str",
    "deployment_access_log_id": "str",
    "deployment_predict_log_id": "str",
    "deployment_memory_in_gbs": "float | int",
    "deployment_ocpus": "float | int",
    "deployment_image": "str",
}

# Variables OCI sets in notebook sessions, job runs and pipeline runs (plus the field names).
OCI_VARIABLES = (
    "PROJECT_OCID",
    "PIPELINE_PROJECT_OCID",
    "PROJECT_COMPARTMENT_OCID",
    "NB_SESSION_COMPARTMENT_OCID",
    "JOB_RUN_COMPARTMENT_OCID",
    "PIPELINE_RUN_COMPARTMENT_OCID",
    "PIPELINE_COMPARTMENT_OCID",
    "NB_SESSION_OCID",
    "JOB_RUN_OCID",
    "PIPELINE_RUN_OCID",
)

FULL = {
    "inference_conda_env": "oci://service-conda-packs@ns/service_pack/cpu/x/1.0/x_v1",
    "inference_python_version": "3.10",
    "training_conda_env": "generalml_p311_cpu_x86_64_v1",
    "training_python_version": "3.11",
    "training_resource_id": "ocid1.datasciencejobrun.oc1..r",
    "training_script_path": "train.py",
    "training_id": "ocid1.datasciencejobrun.oc1..r",
    "compartment_id": "ocid1.compartment.oc1..c",
    "project_id": "ocid1.datascienceproject.oc1..p",
    "bucket_uri": "oci://bucket@ns/prefix/",
    "remove_existing_artifact": False,
    "overwrite_existing_artifact": True,
    "deployment_instance_shape": "VM.Standard.E4.Flex",
    "deployment_instance_subnet_id": "ocid1.subnet.oc1..s",
    "deployment_instance_private_endpoint_id": "ocid1.datasciencepe.oc1..e",
    "deployment_instance_count": 2,
    "deployment_bandwidth_mbps": 10,
    "deployment_log_group_id": "ocid1.loggroup.oc1..g",
    "deployment_access_log_id": "ocid1.log.oc1..a",
    "deployment_predict_log_id": "ocid1.log.oc1..p",
    "deployment_memory_in_gbs": 16.5,
    "deployment_ocpus": 1,
    "deployment_image": "iad.ocir.io/ns/repo:1.0",
}


@pytest.fixture
def clean_env(monkeypatch):
    """No variable that with_env reads is set."""
    for name in (*OCI_VARIABLES, *(n.upper() for n in REFERENCE_FIELDS)):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@dataclasses.dataclass
class TagProperties(BaseProperties):
    """A BaseProperties subclass with a dict and a list field, for the JSON round trip."""

    name: str | None = None
    tags: dict[str, Any] | None = None
    labels: list[str] | None = None
    ratio: float | None = None


# --- fields -----------------------------------------------------------------------------------


def test_every_reference_field_with_its_type_and_default():
    got = {
        f.name: str(f.type).replace("| None", "").strip()
        for f in dataclasses.fields(ModelProperties)
    }
    assert got == REFERENCE_FIELDS
    assert list(got) == list(REFERENCE_FIELDS)  # the reference's order, for positional use
    assert ModelProperties().to_dict() == dict.fromkeys(REFERENCE_FIELDS)
    assert issubclass(ModelProperties, BaseProperties)
    props = ModelProperties(**FULL)
    assert props.to_dict() == FULL
    assert ModelProperties.from_dict(FULL) == props
    assert props.copy() == props and props.copy() is not props


# --- with_prop / with_dict --------------------------------------------------------------------


def test_with_prop_sets_and_chains_and_names_close_properties():
    props = ModelProperties().with_prop("deployment_ocpus", 2).with_prop("project_id", "p")
    assert (props.deployment_ocpus, props.project_id) == (2, "p")
    with pytest.raises(UnknownPropertyError) as info:
        props.with_prop("deployment_cpus", 1)
    message = str(info.value)
    assert "'deployment_cpus'" in message and "'deployment_ocpus'" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, OcimodelError)
    assert info.value.close[0] == "deployment_ocpus"
    with pytest.raises(UnknownPropertyError, match="use one of: .*bucket_uri"):
        props.with_prop("zzz", 1)  # nothing close: every name is listed
    props.with_prop("project_id", None)
    assert props.project_id is None


@pytest.mark.parametrize(
    ("key", "value", "type_name", "expected"),
    [
        ("compartment_id", 5, "int", "a string"),
        ("inference_python_version", 3.1, "float", "a string"),
        ("deployment_instance_count", 2.5, "float", "an int"),
        ("deployment_instance_count", True, "bool", "an int"),
        ("deployment_instance_count", "two", "str", "an int"),
        ("deployment_bandwidth_mbps", [10], "list", "an int"),
        ("deployment_ocpus", "many", "str", "a number"),
        ("deployment_memory_in_gbs", False, "bool", "a number"),
        ("deployment_memory_in_gbs", float("nan"), "float", "a number"),
        ("remove_existing_artifact", 1, "int", "a bool"),
        ("overwrite_existing_artifact", "maybe", "str", "a bool"),
        ("training_script_path", 7, "int", "a string or path"),
    ],
)
def test_wrong_types_are_typed_errors_naming_key_type_and_expectation(
    key, value, type_name, expected
):
    for attempt in (
        lambda: ModelProperties().with_prop(key, value),
        lambda: ModelProperties().with_dict({key: value}),
        lambda: ModelProperties.from_dict({key: value}),
        lambda: ModelProperties(**{key: value}),
        lambda: setattr(ModelProperties(), key, value),
        lambda: check_property_types({key: value}),
    ):
        with pytest.raises(PropertyTypeError) as info:
            attempt()
        message = str(info.value)
        assert f"'{key}'" in message and f"not {type_name} " in message and expected in message
        assert isinstance(info.value, TypeError) and isinstance(info.value, OcimodelError)
        assert info.value.key == key


def test_with_dict_converts_text_accepts_ints_for_floats_and_ignores_unknown_keys(tmp_path):
    props = ModelProperties.from_dict(
        {
            "deployment_instance_count": "3",
            "deployment_bandwidth_mbps": " 20 ",
            "deployment_ocpus": 2,
            "deployment_memory_in_gbs": "7.5",
            "remove_existing_artifact": "false",
            "overwrite_existing_artifact": "True",
            "training_script_path": tmp_path,
            "not_a_property": object(),
        }
    )
    assert props.deployment_instance_count == 3 and props.deployment_bandwidth_mbps == 20
    assert props.deployment_ocpus == 2 and isinstance(props.deployment_ocpus, int)
    assert props.deployment_memory_in_gbs == 7.5
    assert props.remove_existing_artifact is False and props.overwrite_existing_artifact is True
    assert props.training_script_path == tmp_path
    assert not hasattr(props, "not_a_property")
    assert ModelProperties().with_dict(None) == ModelProperties()


def test_with_dict_checks_every_value_before_setting_any():
    props = ModelProperties(project_id="keep")
    with pytest.raises(PropertyTypeError, match="'deployment_instance_count'"):
        props.with_dict({"project_id": "changed", "deployment_instance_count": "x"})
    assert props.project_id == "keep"
    with pytest.raises(PropertiesArgumentError, match="dict of property values.*list"):
        props.with_dict([("project_id", "p")])
    with pytest.raises(TypeError):
        ModelProperties.from_dict("project_id=p")


# --- with_env ---------------------------------------------------------------------------------


def test_with_env_reads_each_field_from_its_upper_case_name(clean_env):
    for key, value in FULL.items():
        clean_env.setenv(key.upper(), str(value))
    props = ModelProperties().with_env()
    assert props.to_dict() == FULL  # text converted to each field's type
    assert ModelProperties.env_variables("deployment_image") == ("DEPLOYMENT_IMAGE",)


def test_with_env_fallbacks_in_order(clean_env):
    assert ModelProperties.env_variables("compartment_id") == (
        "COMPARTMENT_ID",
        "PROJECT_COMPARTMENT_OCID",
        "NB_SESSION_COMPARTMENT_OCID",
        "JOB_RUN_COMPARTMENT_OCID",
        "PIPELINE_RUN_COMPARTMENT_OCID",
        "PIPELINE_COMPARTMENT_OCID",
    )
    order = ModelProperties.env_variables("compartment_id")[1:]
    # each variable is used when every one before it is unset, and loses to the ones before it
    for i, name in enumerate(reversed(order)):
        clean_env.setenv(name, f"ocid1.compartment.oc1..{name.lower()}")
        assert (
            ModelProperties().with_env().compartment_id == f"ocid1.compartment.oc1..{name.lower()}"
        ), i
    clean_env.setenv("COMPARTMENT_ID", "ocid1.compartment.oc1..explicit")
    assert ModelProperties().with_env().compartment_id == "ocid1.compartment.oc1..explicit"

    clean_env.setenv("PIPELINE_PROJECT_OCID", "ocid1.datascienceproject.oc1..pipeline")
    assert ModelProperties().with_env().project_id.endswith("..pipeline")
    clean_env.setenv("PROJECT_OCID", "ocid1.datascienceproject.oc1..p")
    assert ModelProperties().with_env().project_id.endswith("..p")

    clean_env.setenv("PIPELINE_RUN_OCID", "ocid1.datasciencepipelinerun.oc1..x")
    props = ModelProperties().with_env()
    assert props.training_resource_id == props.training_id == "ocid1.datasciencepipelinerun.oc1..x"
    clean_env.setenv("NB_SESSION_OCID", "ocid1.datasciencenotebooksession.oc1..n")
    assert ModelProperties().with_env().training_resource_id.endswith("..n")
    clean_env.setenv("JOB_RUN_OCID", "ocid1.datasciencejobrun.oc1..j")
    assert ModelProperties().with_env().training_resource_id.endswith("..j")


def test_with_env_keeps_explicit_values_and_skips_empty_variables(clean_env):
    clean_env.setenv("PROJECT_OCID", "ocid1.datascienceproject.oc1..env")
    clean_env.setenv("DEPLOYMENT_INSTANCE_COUNT", "4")
    clean_env.setenv("NB_SESSION_COMPARTMENT_OCID", "")
    clean_env.setenv("JOB_RUN_COMPARTMENT_OCID", "ocid1.compartment.oc1..job")
    props = ModelProperties(project_id="explicit", deployment_instance_count=1).with_env()
    assert props.project_id == "explicit" and props.deployment_instance_count == 1
    assert props.compartment_id == "ocid1.compartment.oc1..job"


def test_with_env_bad_text_names_the_variable(clean_env):
    clean_env.setenv("DEPLOYMENT_INSTANCE_COUNT", "lots")
    props = ModelProperties()
    with pytest.raises(PropertyTypeError) as info:
        props.with_env()
    message = str(info.value)
    assert "'deployment_instance_count'" in message and "DEPLOYMENT_INSTANCE_COUNT" in message
    assert "an int" in message
    assert props.deployment_instance_count is None


# --- with_config ------------------------------------------------------------------------------


def test_with_config_takes_sections_dicts_and_to_dict_objects():
    parser = configparser.ConfigParser()
    parser.read_string(
        "[P]\ndeployment_ocpus = 1.5\nremove_existing_artifact = no\nproject_id = 12\n"
        "deployment_image = \nother_key = ignored\n"
    )
    props = ModelProperties().with_config(parser["P"])
    assert props.deployment_ocpus == 1.5 and props.remove_existing_artifact is False
    assert props.project_id == "12"  # string fields stay text
    assert props.deployment_image is None

    class Section:
        def to_dict(self):
            return {"deployment_instance_count": "5"}

    assert ModelProperties().with_config(Section()).deployment_instance_count == 5
    assert ModelProperties().with_config({"bucket_uri": "oci://b@n/"}).bucket_uri == "oci://b@n/"
    with pytest.raises(PropertiesArgumentError, match="config profile"):
        ModelProperties().with_config(42)
    with pytest.raises(PropertyTypeError, match="'deployment_ocpus'.*config profile"):
        ModelProperties().with_config({"deployment_ocpus": "fast"})


# --- from_config / to_config ------------------------------------------------------------------


def test_every_field_round_trips_through_an_ini_file(tmp_path):
    path = str(tmp_path / "props.ini")
    props = ModelProperties(**FULL)
    props.to_config(path, "DEFAULT")  # DEFAULT is a profile like any other
    loaded = ModelProperties.from_config(path, "DEFAULT")
    assert loaded == props
    assert {k: type(v) for k, v in loaded.to_dict().items()} == {
        k: type(v) for k, v in FULL.items()
    }
    # unset fields are not written, so they read back as unset
    sparse = ModelProperties(deployment_ocpus=0.25)
    sparse.to_config(path, "SPARSE")
    assert ModelProperties.from_config(path, "SPARSE") == sparse
    assert "project_id" not in (tmp_path / "props.ini").read_text().split("[SPARSE]")[1]


def test_dicts_lists_and_floats_round_trip_as_json_and_text(tmp_path):
    path = tmp_path / "tags.ini"
    props = TagProperties(name="true", tags={"team": "ds", "n": 2}, labels=["a", "b"], ratio=0.1)
    props.to_config(str(path), "T")
    assert '"team": "ds"' in path.read_text()
    loaded = TagProperties.from_config(str(path), "T")
    assert loaded == props and loaded.name == "true"
    with pytest.raises(PropertyTypeError, match="'tags' must be a dict"):
        TagProperties(tags="[1, 2]")
    with pytest.raises(PropertyTypeError, match="'labels' must be a list"):
        TagProperties(labels="not json")


def test_writing_a_profile_keeps_the_others_and_replaces_only_with_force(tmp_path):
    path = str(tmp_path / "sub" / "props.ini")  # the folder is created
    ModelProperties(project_id="dev").to_config(path, "DEV")
    ModelProperties(project_id="prod", deployment_instance_count=3).to_config(path, "PROD")
    with pytest.raises(ConfigProfileExistsError) as info:
        ModelProperties(project_id="dev2").to_config(path, "DEV")
    message = str(info.value)
    assert "'DEV'" in message and path in message and "force_overwrite=True" in message
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, OcimodelError)
    assert ModelProperties.from_config(path, "DEV").project_id == "dev"

    ModelProperties(project_id="dev2", deployment_ocpus=4).to_config(
        path, "DEV", force_overwrite=True
    )
    assert ModelProperties.from_config(path, "DEV") == ModelProperties(
        project_id="dev2", deployment_ocpus=4
    )
    assert ModelProperties.from_config(path, "PROD") == ModelProperties(
        project_id="prod", deployment_instance_count=3
    )


def test_reading_errors_name_the_profile_and_the_file(tmp_path):
    path = str(tmp_path / "props.ini")
    with pytest.raises(ConfigFileNotFoundError) as info:
        ModelProperties.from_config(path, "DEV")
    assert path in str(info.value) and isinstance(info.value, FileNotFoundError)

    ModelProperties(project_id="p").to_config(path, "DEV")
    with pytest.raises(ConfigProfileNotFoundError) as info:
        ModelProperties.from_config(path, "PROD")
    message = str(info.value)
    assert "'PROD'" in message and path in message and "profiles: DEV" in message
    assert isinstance(info.value, ValueError)

    broken = tmp_path / "broken.ini"
    broken.write_text("[DEV]\nproject_id = p\nthis line is not a setting\n")
    with pytest.raises(ConfigFileError, match=r"broken\.ini.*line 3"):
        ModelProperties.from_config(str(broken), "DEV")
    with pytest.raises(ConfigFileError, match="folder"):
        ModelProperties.from_config(str(tmp_path), "DEV")

    typed = tmp_path / "typed.ini"
    typed.write_text("[DEV]\ndeployment_instance_count = 2.5\n")
    with pytest.raises(PropertyTypeError, match="'deployment_instance_count' must be an int"):
        ModelProperties.from_config(str(typed), "DEV")

    for bad in ("", "a]b", "two\nlines", None):
        with pytest.raises(PropertiesArgumentError, match="profile name"):
            ModelProperties().to_config(path, bad)


def test_path_fields_are_written_as_text(tmp_path):
    path = str(tmp_path / "props.ini")
    script = pathlib.Path(tmp_path / "train.py")
    ModelProperties(training_script_path=script).to_config(path, "P")
    assert ModelProperties.from_config(path, "P").training_script_path == os.fspath(script)
