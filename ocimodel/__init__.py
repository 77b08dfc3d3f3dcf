"""ocimodel: take a trained model to a live OCI Data Science endpoint.

The public names below are imported on first use, so ``import ocimodel`` stays fast and does
not pull in pandas, the oci SDK or scikit-learn until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ocimodel.errors import (
    AritfactFolderStructureError,
    ArtifactFolderStructureError,
    ArtifactNestedFolderError,
    ArtifactRequiredFilesError,
    ArtifactsNotAvailableError,
    CondaEnvError,
    IntrospectionNotPassed,
    MetadataDescriptionTooLong,
    MetadataSizeTooLarge,
    MetadataValueTooLong,
    NotActiveDeploymentError,
    OcimodelError,
    RuntimeInfoInconsistencyError,
    RuntimeYamlError,
    ScoreError,
    SerializeInputNotImplementedError,
    SerializeModelNotImplementedError,
    UnsafeArchiveError,
)

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # artifact and runtime.yaml
    "ModelArtifact": "ocimodel.artifact.model_artifact",
    "RuntimeInfo": "ocimodel.runtime",
    # facade
    "GenericModel": "ocimodel.generic_model",
    "FrameworkSpecificModel": "ocimodel.generic_model",
    "DataScienceModelType": "ocimodel.generic_model",
    "ModelDeploymentRuntimeType": "ocimodel.generic_model",
    "MetadataMixin": "ocimodel.generic_model",
    "UnknownOCIDError": "ocimodel.generic_model",
    # deploy and predict
    "ModelDeployment": "ocimodel.model_deployment",
    "ModelNotDeployedError": "ocimodel.model_deployment",
    "DeploySpec": "ocimodel.deploy",
    "ModelNotSavedError": "ocimodel.deploy",
    "DeploymentFailedError": "ocimodel.deploy",
    "DeploymentStateError": "ocimodel.deploy",
    "DeploymentTimeoutError": "ocimodel.deploy",
    "PredictInputError": "ocimodel.predict",
    "PredictError": "ocimodel.oci.predict",
    "PredictThrottledError": "ocimodel.oci.predict",
    "PredictTimeoutError": "ocimodel.oci.predict",
    "DeploymentNotActiveError": "ocimodel.oci.predict",
    "SummaryStatus": "ocimodel.summary",
    "ModelState": "ocimodel.summary",
    "ModelProperties": "ocimodel.properties",
    "ModelVersionSet": "ocimodel.model_version_set",
    "BaseProperties": "ocimodel.properties",
    # introspection
    "ModelIntrospect": "ocimodel.introspect",
    "Introspectable": "ocimodel.introspect",
    "PrintItem": "ocimodel.introspect",
    "TEST_STATUS": "ocimodel.introspect",
    # metadata
    "ModelMetadata": "ocimodel.metadata",
    "ModelMetadataItem": "ocimodel.metadata",
    "ModelCustomMetadata": "ocimodel.metadata",
    "ModelCustomMetadataItem": "ocimodel.metadata",
    "ModelTaxonomyMetadata": "ocimodel.metadata",
    "ModelTaxonomyMetadataItem": "ocimodel.metadata",
    "ModelProvenanceMetadata": "ocimodel.metadata",
    "UseCaseType": "ocimodel.metadata",
    "Framework": "ocimodel.metadata",
    "MetadataCustomCategory": "ocimodel.metadata",
    "MetadataCustomKeys": "ocimodel.metadata",
    "MetadataCustomPrintColumns": "ocimodel.metadata",
    "MetadataTaxonomyKeys": "ocimodel.metadata",
    "MetadataTaxonomyPrintColumns": "ocimodel.metadata",
    "ChangesNotCommitted": "ocimodel.metadata",
    # schema
    "Schema": "ocimodel.schema",
    "Attribute": "ocimodel.schema",
    "Domain": "ocimodel.schema",
    # serializers
    "SERDE": "ocimodel.serde",
    "ModelSerializerType": "ocimodel.serde",
    "ModelInputSerializerType": "ocimodel.serde",
    # auth
    "OCIAuth": "ocimodel.oci.auth",
    "resolve_auth": "ocimodel.oci.auth",
    "set_auth": "ocimodel.oci.auth",
    "api_keys": "ocimodel.oci.auth",
    "resource_principal": "ocimodel.oci.auth",
    "default_signer": "ocimodel.oci.auth",
}

__all__ = [
    "AritfactFolderStructureError",
    "ArtifactFolderStructureError",
    "ArtifactNestedFolderError",
    "ArtifactRequiredFilesError",
    "ArtifactsNotAvailableError",
    "Attribute",
    "BaseProperties",
    "ChangesNotCommitted",
    "CondaEnvError",
    "DataScienceModelType",
    "DeploySpec",
    "DeploymentFailedError",
    "DeploymentNotActiveError",
    "DeploymentStateError",
    "DeploymentTimeoutError",
    "Domain",
    "Framework",
    "FrameworkSpecificModel",
    "GenericModel",
    "Introspectable",
    "IntrospectionNotPassed",
    "MetadataCustomCategory",
    "MetadataCustomKeys",
    "MetadataCustomPrintColumns",
    "MetadataDescriptionTooLong",
    "MetadataMixin",
    "MetadataSizeTooLarge",
    "MetadataTaxonomyKeys",
    "MetadataTaxonomyPrintColumns",
    "MetadataValueTooLong",
    "ModelArtifact",
    "ModelCustomMetadata",
    "ModelCustomMetadataItem",
    "ModelDeployment",
    "ModelDeploymentRuntimeType",
    "ModelInputSerializerType",
    "ModelIntrospect",
    "ModelMetadata",
    "ModelMetadataItem",
    "ModelNotDeployedError",
    "ModelNotSavedError",
    "ModelProperties",
    "ModelProvenanceMetadata",
    "ModelSerializerType",
    "ModelState",
    "ModelTaxonomyMetadata",
    "ModelTaxonomyMetadataItem",
    "ModelVersionSet",
    "NotActiveDeploymentError",
    "OCIAuth",
    "OcimodelError",
    "PredictError",
    "PredictInputError",
    "PredictThrottledError",
    "PredictTimeoutError",
    "PrintItem",
    "RuntimeInfo",
    "RuntimeInfoInconsistencyError",
    "RuntimeYamlError",
    "SERDE",
    "Schema",
    "ScoreError",
    "SerializeInputNotImplementedError",
    "SerializeModelNotImplementedError",
    "SummaryStatus",
    "TEST_STATUS",
    "UnknownOCIDError",
    "UnsafeArchiveError",
    "UseCaseType",
    "api_keys",
    "default_signer",
    "resolve_auth",
    "resource_principal",
    "set_auth",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ocimodel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from ocimodel.artifact.model_artifact import ModelArtifact
    from ocimodel.deploy import (
        DeploymentFailedError,
        DeploymentStateError,
        DeploymentTimeoutError,
        DeploySpec,
        ModelNotSavedError,
    )
    from ocimodel.generic_model import (
        DataScienceModelType,
        FrameworkSpecificModel,
        GenericModel,
        MetadataMixin,
        ModelDeploymentRuntimeType,
        UnknownOCIDError,
    )
    from ocimodel.introspect import TEST_STATUS, Introspectable, ModelIntrospect, PrintItem
    from ocimodel.metadata import (
        ChangesNotCommitted,
        Framework,
        MetadataCustomCategory,
        MetadataCustomKeys,
        MetadataCustomPrintColumns,
        MetadataTaxonomyKeys,
        MetadataTaxonomyPrintColumns,
        ModelCustomMetadata,
        ModelCustomMetadataItem,
        ModelMetadata,
        ModelMetadataItem,
        ModelProvenanceMetadata,
        ModelTaxonomyMetadata,
        ModelTaxonomyMetadataItem,
        UseCaseType,
    )
    from ocimodel.model_deployment import ModelDeployment, ModelNotDeployedError
    from ocimodel.model_version_set import ModelVersionSet
    from ocimodel.oci.auth import (
        OCIAuth,
        api_keys,
        default_signer,
        resolve_auth,
        resource_principal,
        set_auth,
    )
    from ocimodel.oci.predict import (
        DeploymentNotActiveError,
        PredictError,
        PredictThrottledError,
        PredictTimeoutError,
    )
    from ocimodel.predict import PredictInputError
    from ocimodel.properties import BaseProperties, ModelProperties
    from ocimodel.runtime import RuntimeInfo
    from ocimodel.schema import Attribute, Domain, Schema
    from ocimodel.serde import SERDE, ModelInputSerializerType, ModelSerializerType
    from ocimodel.summary import ModelState, SummaryStatus
