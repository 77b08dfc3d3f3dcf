"""Request-body validation derived from the oci SDK's model classes."""

from __future__ import annotations

import oci.data_science.models as dsm
import pytest

from ocimodel.local import sdkmodels
from ocimodel.local.core import OCIError


def _error(body, cls, **kw) -> OCIError:
    with pytest.raises(OCIError) as info:
        sdkmodels.validate(body, cls, **kw)
    return info.value


def test_enum_values_come_from_the_sdk_setters():
    assert sdkmodels.enum_values(dsm.Model, "lifecycleState") == [
        dsm.Model.LIFECYCLE_STATE_ACTIVE,
        dsm.Model.LIFECYCLE_STATE_DELETED,
        dsm.Model.LIFECYCLE_STATE_FAILED,
        dsm.Model.LIFECYCLE_STATE_INACTIVE,
    ]
    # python and camelCase names both work; a free-text field has no enum
    assert "EXPORT_MODEL_ARTIFACT" in sdkmodels.enum_values(dsm.WorkRequest, "operation_type")
    assert sdkmodels.enum_values(dsm.Metadata, "value") == []


def test_every_enum_constant_of_a_class_is_an_allowed_value():
    # the class constants (e.g. STATUS_ACCEPTED) and the setters' lists must agree
    for cls, attr, prefix in [
        (dsm.WorkRequest, "status", "STATUS_"),
        (dsm.ModelVersionSet, "lifecycleState", "LIFECYCLE_STATE_"),
        (dsm.Project, "lifecycleState", "LIFECYCLE_STATE_"),
    ]:
        constants = {v for k, v in vars(cls).items() if k.startswith(prefix)}
        assert constants == set(sdkmodels.enum_values(cls, attr))


def test_valid_body_is_normalised_and_nulls_dropped():
    body = {
        "compartmentId": "ocid1.compartment.oc1..c",
        "projectId": "ocid1.datascienceproject.oc1..p",
        "description": None,
        "customMetadataList": [{"key": "k", "value": "v", "category": "Other"}],
        "definedTags": {"ns": {"key": 1}},
        "retentionSetting": {"archiveAfterDays": 30.0},
    }
    out = sdkmodels.validate(body, dsm.CreateModelDetails, required=("compartmentId",))
    assert "description" not in out
    assert out["retentionSetting"] == {"archiveAfterDays": 30}
    assert isinstance(out["retentionSetting"]["archiveAfterDays"], int)
    assert out["customMetadataList"][0]["key"] == "k"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"compartmentId": 5}, "compartmentId", "InvalidParameter"),
        ({"compartmentId": "c", "displayNme": "x"}, "displayNme", "InvalidParameter"),
        ({"compartmentId": "c", "freeformTags": {"a": 1}}, "freeformTags.a", "InvalidParameter"),
        (
            {"compartmentId": "c", "customMetadataList": [{"key": "k", "hasArtifact": "yes"}]},
            "customMetadataList[0].hasArtifact",
            "InvalidParameter",
        ),
        (
            {"compartmentId": "c", "customMetadataList": {"key": "k"}},
            "customMetadataList",
            "InvalidParameter",
        ),
        (
            {"compartmentId": "c", "retentionSetting": {"customerNotificationType": "LOUD"}},
            "retentionSetting.customerNotificationType",
            "InvalidParameter",
        ),
        ({"projectId": "p"}, "compartmentId", "MissingParameter"),
        ({"compartmentId": None, "projectId": "p"}, "compartmentId", "MissingParameter"),
    ],
)
def test_bad_bodies_name_the_field(body, field, code):
    err = _error(body, dsm.CreateModelDetails, required=("compartmentId", "projectId"))
    assert err.status == 400
    assert err.code == code
    assert err.message.startswith(field)


def test_polymorphic_discriminator_selects_the_subtype():
    body = {
        "artifactExportDetails": {
            "artifactSourceType": "ORACLE_OBJECT_STORAGE",
            "namespace": "ns",
            "sourceBucket": "b",
            "sourceObjectName": "o.zip",
        }
    }
    out = sdkmodels.validate(
        body, dsm.ExportModelArtifactDetails, required=("artifactExportDetails.sourceBucket",)
    )
    assert out == body
    # a subtype-only field is known; the discriminator is required and checked
    missing = _error(
        {"artifactExportDetails": {"sourceBucket": "b"}}, dsm.ExportModelArtifactDetails
    )
    assert (missing.code, missing.message.split(" ")[0]) == (
        "MissingParameter",
        "artifactExportDetails.artifactSourceType",
    )
    wrong = _error(
        {"artifactExportDetails": {"artifactSourceType": "FTP"}}, dsm.ExportModelArtifactDetails
    )
    assert wrong.code == "InvalidParameter" and "ORACLE_OBJECT_STORAGE" in wrong.message
    nested = _error(
        {
            "artifactExportDetails": {
                "artifactSourceType": "ORACLE_OBJECT_STORAGE",
                "destinationBucket": "b",
            }
        },
        dsm.ExportModelArtifactDetails,
    )
    assert nested.message.startswith("artifactExportDetails.destinationBucket")


def test_deeply_nested_polymorphic_deployment_body():
    body = {
        "projectId": "p",
        "compartmentId": "c",
        "modelDeploymentConfigurationDetails": {
            "deploymentType": "SINGLE_MODEL",
            "modelConfigurationDetails": {
                "modelId": "m",
                "instanceConfiguration": {"instanceShapeName": "VM.Standard.E4.Flex"},
                "scalingPolicy": {"policyType": "FIXED_SIZE", "instanceCount": 1},
            },
        },
    }
    assert sdkmodels.validate(body, dsm.CreateModelDeploymentDetails) == body
    body["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["scalingPolicy"][
        "instanceCount"
    ] = "one"
    err = _error(body, dsm.CreateModelDeploymentDetails)
    assert err.message.startswith(
        "modelDeploymentConfigurationDetails.modelConfigurationDetails.scalingPolicy.instanceCount"
    )


def test_required_fields_follow_the_sdk_docs_and_where_prefixes_names():
    assert sdkmodels.required_fields(dsm.CreateModelVersionSetDetails) == (
        "compartmentId",
        "projectId",
        "name",
    )
    err = _error(
        {"name": "x"},
        dsm.CreateModelVersionSetDetails,
        required=("projectId",),
        where="createModelVersionSetDetails",
    )
    assert err.message.startswith("createModelVersionSetDetails.projectId")
    assert _error([1], dsm.CreateProjectDetails).code == "InvalidParameter"


def test_booleans_are_not_numbers_and_numbers_not_booleans():
    assert _error({"isBackupEnabled": 1}, dsm.BackupSetting).code == "InvalidParameter"
    assert _error({"archiveAfterDays": True}, dsm.RetentionSetting).code == "InvalidParameter"
    assert _error({"archiveAfterDays": 1.5}, dsm.RetentionSetting).code == "InvalidParameter"


def test_operation_enums_read_the_clients_allowed_values():
    from oci.data_science import DataScienceClient
    from oci.object_storage import ObjectStorageClient

    models = sdkmodels.operation_enums(DataScienceClient, "list_models")
    assert set(models["lifecycleState"]) == {
        getattr(dsm.Model, name) for name in dir(dsm.Model) if name.startswith("LIFECYCLE_STATE_")
    }
    assert "timeCreated" in models["sortBy"] and set(models["sortOrder"]) == {"ASC", "DESC"}
    assert "fields" not in sdkmodels.operation_enums(ObjectStorageClient, "list_objects")
    assert "tags" in sdkmodels.operation_enums(ObjectStorageClient, "list_buckets")["fields"]
