"""The model deployment settings block: the core's :class:`~ocimodel.properties.ModelProperties`
(conda environments, compartment, project, bucket, the deployment's shape, size and logs),
stored in Prefect, with the credentials to use.

Every field has the core's default (all unset: the core fills in its own defaults when it
deploys, e.g. the shape from :data:`ocimodel.oci.deployment.DEFAULT_INSTANCE_SHAPE`), so a
block says only what differs.
"""

import dataclasses
from typing import Any

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, field_validator
from pydantic.fields import FieldInfo

from ocimodel.oci.deployment import (
    DEFAULT_BANDWIDTH_MBPS,
    DEFAULT_INSTANCE_COUNT,
    DEFAULT_INSTANCE_SHAPE,
    DEFAULT_MEMORY_IN_GBS,
    DEFAULT_OCPUS,
)
from ocimodel.properties import ModelProperties, PropertyTypeError, check_property_types

from .credentials import ORACLE_LOGO_URL, OCICredentials

__all__ = ["PROPERTY_FIELDS", "ModelDeploymentSettings"]

PROPERTY_FIELDS = tuple(f.name for f in dataclasses.fields(ModelProperties))
"""The ModelProperties fields, each one a field of the block."""
_DEFAULTS = ModelProperties().to_dict()


def _property(name: str, description: str, **constraints: Any) -> FieldInfo:
    """The block field of property ``name``: the core's default and a description."""
    return Field(default=_DEFAULTS[name], description=description, **constraints)


class ModelDeploymentSettings(Block):
    """Settings to save and deploy a model on OCI Data Science: the fields of ocimodel's
    ModelProperties (conda environments, compartment, project, bucket, the deployment's shape,
    OCPUs, memory, instances, bandwidth and logs), with the OCI credentials to use.

    ``to_properties()`` gives the ModelProperties that ocimodel's save and deploy take; unset
    fields keep the core's defaults.

    Example:
        Load stored deployment settings and turn them into model properties:
        ```python
        from ocimodel.blocks import ModelDeploymentSettings

        settings = ModelDeploymentSettings.load("BLOCK_NAME")
        properties = settings.to_properties()
        auth = settings.credentials.get_auth() if settings.credentials else None
        ```
    """

    _block_type_name = "OCI Model Deployment Settings"
    _logo_url = ORACLE_LOGO_URL
    _documentation_url = "https://docs.oracle.com/en-us/iaas/data-science/using/model-dep-about.htm"

    # Errors never echo what was given: a nested credentials dict may hold secrets.
    model_config = ConfigDict(allow_inf_nan=False, hide_input_in_errors=True)

    credentials: OCICredentials | None = Field(
        default=None,
        description="OCI credentials to save and deploy with; unset means ocimodel's default.",
    )
    inference_conda_env: str | None = _property(
        "inference_conda_env",
        "Conda environment the deployment runs the model in (a slug or an oci:// URI).",
    )
    inference_python_version: str | None = _property(
        "inference_python_version", "Python version of the inference conda environment."
    )
    training_conda_env: str | None = _property(
        "training_conda_env", "Conda environment the model was trained in (slug or oci:// URI)."
    )
    training_python_version: str | None = _property(
        "training_python_version", "Python version of the training conda environment."
    )
    training_resource_id: str | None = _property(
        "training_resource_id",
        "OCID of the notebook session, job run or pipeline run that trained the model.",
    )
    training_script_path: str | None = _property(
        "training_script_path", "Path of the training script, kept in the model's provenance."
    )
    training_id: str | None = _property(
        "training_id", "OCID of the training run, kept in the model's provenance."
    )
    compartment_id: str | None = _property(
        "compartment_id", "OCID of the compartment of the model and its deployment."
    )
    project_id: str | None = _property(
        "project_id", "OCID of the Data Science project of the model and its deployment."
    )
    bucket_uri: str | None = _property(
        "bucket_uri",
        "Object Storage URI (oci://bucket@namespace/prefix) that large artifacts go through.",
    )
    remove_existing_artifact: bool | None = _property(
        "remove_existing_artifact",
        "Whether to delete the artifact's copy in bucket_uri after saving the model.",
    )
    overwrite_existing_artifact: bool | None = _property(
        "overwrite_existing_artifact",
        "Whether to replace an artifact already at bucket_uri.",
    )
    deployment_instance_shape: str | None = _property(
        "deployment_instance_shape",
        f"Compute shape of the deployment's instances; unset means {DEFAULT_INSTANCE_SHAPE}.",
    )
    deployment_instance_subnet_id: str | None = _property(
        "deployment_instance_subnet_id",
        "OCID of the subnet for the instances (custom networking); unset means the "
        "service's network.",
    )
    deployment_instance_private_endpoint_id: str | None = _property(
        "deployment_instance_private_endpoint_id",
        "OCID of a private endpoint that serves the deployment inside a VCN.",
    )
    deployment_instance_count: int | None = _property(
        "deployment_instance_count",
        f"Number of instances serving the model; unset means {DEFAULT_INSTANCE_COUNT}.",
        ge=1,
    )
    deployment_bandwidth_mbps: int | None = _property(
        "deployment_bandwidth_mbps",
        f"Load balancer bandwidth in Mbps; unset means {DEFAULT_BANDWIDTH_MBPS}.",
        ge=1,
    )
    deployment_log_group_id: str | None = _property(
        "deployment_log_group_id", "OCID of the log group of the access and predict logs."
    )
    deployment_access_log_id: str | None = _property(
        "deployment_access_log_id", "OCID of the log that records requests to the endpoint."
    )
    deployment_predict_log_id: str | None = _property(
        "deployment_predict_log_id", "OCID of the log that records score.py's output."
    )
    deployment_memory_in_gbs: float | None = _property(
        "deployment_memory_in_gbs",
        f"Memory per instance in GB, for flexible (*.Flex) shapes; unset means "
        f"{DEFAULT_MEMORY_IN_GBS}.",
        gt=0,
    )
    deployment_ocpus: float | None = _property(
        "deployment_ocpus",
        f"OCPUs per instance, for flexible (*.Flex) shapes; unset means {DEFAULT_OCPUS}.",
        gt=0,
    )
    deployment_image: str | None = _property(
        "deployment_image",
        "Container image to serve the model with (bring your own container) instead of the "
        "conda runtime.",
    )

    @field_validator(*PROPERTY_FIELDS, mode="before")
    @classmethod
    def _the_core_accepts(cls, value: Any, info: Any) -> Any:
        """Each value is one the core's ModelProperties takes (its rules, checked once)."""
        if isinstance(value, str) and not value.strip():
            return None  # what a cleared form field sends
        try:
            check_property_types({info.field_name: value})
        except PropertyTypeError as exc:
            raise ValueError(str(exc)) from None
        return value

    def to_properties(self) -> ModelProperties:
        """The ModelProperties of these settings, for ocimodel's save and deploy."""
        return ModelProperties(**{name: getattr(self, name) for name in PROPERTY_FIELDS})

    @classmethod
    def from_properties(
        cls, properties: ModelProperties, credentials: OCICredentials | None = None
    ) -> "ModelDeploymentSettings":
        """Settings holding ``properties`` (e.g. read by ``ModelProperties.with_env()``)."""
        return cls(credentials=credentials, **properties.to_dict())


_missing = set(PROPERTY_FIELDS) - set(ModelDeploymentSettings.model_fields)
if _missing:  # pragma: no cover - a test keeps the block in step with ModelProperties
    raise ImportError(f"ModelDeploymentSettings lacks ModelProperties fields {sorted(_missing)}")
