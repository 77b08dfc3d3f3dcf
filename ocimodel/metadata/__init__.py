"""Model metadata: taxonomy, custom items, provenance, and the catalog's size limits."""

from ocimodel.errors import MetadataDescriptionTooLong, MetadataSizeTooLarge, MetadataValueTooLong
from ocimodel.metadata.base import ModelMetadata, ModelMetadataItem
from ocimodel.metadata.custom import ModelCustomMetadata
from ocimodel.metadata.detect import FrameworkInfo, detect_framework, json_safe
from ocimodel.metadata.enums import (
    Framework,
    MetadataCustomCategory,
    MetadataCustomKeys,
    MetadataCustomPrintColumns,
    MetadataTaxonomyKeys,
    MetadataTaxonomyPrintColumns,
    UseCaseType,
)
from ocimodel.metadata.errors import (
    ChangesNotCommitted,
    InvalidMetadataType,
    InvalidMetadataValue,
    MetadataBudgetTooLarge,
    MetadataItemExists,
    MetadataItemNotFound,
)
from ocimodel.metadata.items import ModelCustomMetadataItem, ModelTaxonomyMetadataItem
from ocimodel.metadata.limits import (
    METADATA_DESCRIPTION_LENGTH_LIMIT,
    METADATA_KEY_LENGTH_LIMIT,
    METADATA_SIZE_LIMIT,
    METADATA_VALUE_LENGTH_LIMIT,
    catalog_metadata_payload,
    catalog_metadata_size,
    validate_catalog_metadata_size,
)
from ocimodel.metadata.provenance import ModelProvenanceMetadata
from ocimodel.metadata.taxonomy import (
    HYPERPARAMETERS_FILE_NAME,
    HYPERPARAMETERS_MAX_INLINE_BYTES,
    ModelTaxonomyMetadata,
    place_hyperparameters,
    populate_taxonomy,
)

__all__ = [
    "ChangesNotCommitted",
    "Framework",
    "FrameworkInfo",
    "HYPERPARAMETERS_FILE_NAME",
    "HYPERPARAMETERS_MAX_INLINE_BYTES",
    "InvalidMetadataType",
    "InvalidMetadataValue",
    "METADATA_DESCRIPTION_LENGTH_LIMIT",
    "METADATA_KEY_LENGTH_LIMIT",
    "METADATA_SIZE_LIMIT",
    "METADATA_VALUE_LENGTH_LIMIT",
    "MetadataBudgetTooLarge",
    "MetadataCustomCategory",
    "MetadataCustomKeys",
    "MetadataCustomPrintColumns",
    "MetadataDescriptionTooLong",
    "MetadataItemExists",
    "MetadataItemNotFound",
    "MetadataSizeTooLarge",
    "MetadataTaxonomyKeys",
    "MetadataTaxonomyPrintColumns",
    "MetadataValueTooLong",
    "ModelCustomMetadata",
    "ModelCustomMetadataItem",
    "ModelMetadata",
    "ModelMetadataItem",
    "ModelProvenanceMetadata",
    "ModelTaxonomyMetadata",
    "ModelTaxonomyMetadataItem",
    "UseCaseType",
    "catalog_metadata_payload",
    "catalog_metadata_size",
    "detect_framework",
    "json_safe",
    "place_hyperparameters",
    "populate_taxonomy",
    "validate_catalog_metadata_size",
]
