"""ModelProperties config files in Object Storage (oci:// URIs) against the local OCI service:
to_config/from_config round trip every type, keep the other profiles, refuse to replace a
profile without force_overwrite, and name the object in every error; with a typed OCIAuth, an
ADS auth dict, or the process default."""

from __future__ import annotations

import uuid

import pytest

from ocimodel.oci.auth import OCIAuth
from ocimodel.oci.storage import open_uri, uri_exists
from ocimodel.properties import (
    ConfigFileNotFoundError,
    ConfigProfileExistsError,
    ConfigProfileNotFoundError,
    ModelProperties,
)

PROPS = ModelProperties(
    inference_conda_env="oci://service-conda-packs@ns/service_pack/cpu/x/1.0/x_v1",
    inference_python_version="3.10",
    compartment_id="ocid1.compartment.oc1..c",
    project_id="ocid1.datascienceproject.oc1..p",
    bucket_uri="oci://bucket@ns/prefix/",
    remove_existing_artifact=False,
    overwrite_existing_artifact=True,
    deployment_instance_shape="VM.Standard.E4.Flex",
    deployment_instance_count=2,
    deployment_bandwidth_mbps=10,
    deployment_memory_in_gbs=16.5,
    deployment_ocpus=1,
)


@pytest.fixture
def typed(local_oci) -> OCIAuth:
    return OCIAuth.from_config_file(
        str(local_oci.config_path), local_oci.profile, endpoint=local_oci.endpoint
    )


@pytest.fixture
def uri(bucket, namespace) -> str:
    return f"oci://{bucket}@{namespace}/configs/{uuid.uuid4().hex[:8]}/props.ini"


def test_round_trip_in_object_storage_with_typed_auth(typed, uri):
    PROPS.to_config(uri, "DEV", auth=typed)
    assert uri_exists(uri, auth=typed)
    loaded = ModelProperties.from_config(uri, "DEV", auth=typed)
    assert loaded == PROPS
    assert {k: type(v) for k, v in loaded.to_dict().items()} == {
        k: type(v) for k, v in PROPS.to_dict().items()
    }


def test_profiles_are_kept_and_replaced_only_with_force(local_oci, typed, uri):
    ads_auth = local_oci.auth()  # an ADS-style dict works the same
    ModelProperties(project_id="dev").to_config(uri, "DEV", auth=typed)
    ModelProperties(project_id="prod", deployment_ocpus=2.5).to_config(uri, "PROD", auth=ads_auth)
    with pytest.raises(ConfigProfileExistsError) as info:
        ModelProperties(project_id="other").to_config(uri, "DEV", auth=typed)
    assert "'DEV'" in str(info.value) and uri in str(info.value)
    assert ModelProperties.from_config(uri, "DEV", auth=typed).project_id == "dev"

    ModelProperties(project_id="dev2").to_config(uri, "DEV", force_overwrite=True, auth=typed)
    with open_uri(uri, "rb", auth=typed) as fh:
        text = fh.read().decode()
    assert text.count("[DEV]") == 1 and "[PROD]" in text
    assert ModelProperties.from_config(uri, "DEV", auth=ads_auth).project_id == "dev2"
    assert ModelProperties.from_config(uri, "PROD", auth=typed) == ModelProperties(
        project_id="prod", deployment_ocpus=2.5
    )


def test_missing_object_and_profile_name_the_uri(typed, uri):
    with pytest.raises(ConfigFileNotFoundError) as info:
        ModelProperties.from_config(uri, "DEV", auth=typed)
    assert uri in str(info.value) and "URI" in str(info.value)
    PROPS.to_config(uri, "DEV", auth=typed)
    with pytest.raises(ConfigProfileNotFoundError) as info:
        ModelProperties.from_config(uri, "PROD", auth=typed)
    assert "'PROD'" in str(info.value) and uri in str(info.value)


def test_default_auth_from_the_environment(local_env, bucket, namespace):
    uri = f"oci://{bucket}@{namespace}/default/props.ini"
    PROPS.to_config(uri, "DEFAULT")
    assert ModelProperties.from_config(uri, "DEFAULT") == PROPS
