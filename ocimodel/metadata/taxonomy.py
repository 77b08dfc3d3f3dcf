"""Taxonomy (defined) metadata: the fixed keys, and filling them in from a model."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from ocimodel.files import write_converging
from ocimodel.layout import HYPERPARAMETERS_FILE_NAME
from ocimodel.metadata.base import ModelMetadata
from ocimodel.metadata.detect import FrameworkInfo, detect_framework
from ocimodel.metadata.enums import MetadataTaxonomyKeys, MetadataTaxonomyPrintColumns
from ocimodel.metadata.errors import InvalidMetadataType, InvalidMetadataValue
from ocimodel.metadata.items import ModelTaxonomyMetadataItem, check_taxonomy_value
from ocimodel.metadata.limits import DEFINED_METADATA_LIST, METADATA_SIZE_LIMIT

HYPERPARAMETERS_MAX_INLINE_BYTES = 16000
"""Hyperparameters whose catalog item exceeds this many bytes go to ``hyperparameters.json``,
so at least half of the 32,000-byte budget stays free for the rest of the metadata."""


class ModelTaxonomyMetadata(ModelMetadata):
    """The six taxonomy items: UseCaseType, Framework, FrameworkVersion, Algorithm,
    Hyperparameters and ArtifactTestResults. Values are validated when set."""

    CATALOG_LIST = DEFINED_METADATA_LIST
    DEFAULT_FILE_NAME = "metadata_taxonomy.json"

    def __init__(self) -> None:
        super().__init__()
        for key in MetadataTaxonomyKeys.values():
            item = ModelTaxonomyMetadataItem(key)
            item._owner = self
            self._items[key] = item

    def update_values(self, **values: Any) -> None:
        """Set several items at once by key, all or nothing (``update_values(Framework=...)``)."""
        for key, value in values.items():
            self.get(key)
            check_taxonomy_value(key, value)
        previous = {key: self._items[key].value for key in values}
        for key, value in values.items():
            self._items[key]._value = value
        try:
            self.validate_size()
        except Exception:
            for key, value in previous.items():
                self._items[key]._value = value
            raise

    def reserved_size(self) -> int:
        """While ArtifactTestResults is unset, the bytes its largest possible value takes, so
        metadata that passes prepare still fits once introspection records its results."""
        if self._items[MetadataTaxonomyKeys.ARTIFACT_TEST_RESULT].value is not None:
            return 0
        return _worst_case_test_results_size()

    def to_dataframe(self):
        """Items as a DataFrame with columns Key, Value."""
        import pandas as pd

        cols = MetadataTaxonomyPrintColumns
        rows = [{cols.KEY: i.key, cols.VALUE: i.value} for i in self._items.values()]
        return pd.DataFrame(rows, columns=MetadataTaxonomyPrintColumns.values())

    @classmethod
    def from_dict(cls, data: dict) -> ModelTaxonomyMetadata:
        """Build from ``{"metadata": [{"key", "value"}, ...]}``; keys must be taxonomy keys."""
        entries = cls._metadata_list(data, cls.__name__)
        metadata = cls()
        values = {}
        for entry in entries:
            item = ModelTaxonomyMetadataItem.from_dict(entry)
            values[item.key] = item.value
        metadata.update_values(**values)
        return metadata


@functools.lru_cache(maxsize=1)
def _worst_case_test_results_size() -> int:
    """Catalog bytes of the largest ArtifactTestResults item, with its ``", "`` separator."""
    from ocimodel.introspect import worst_case_test_results

    probe = ModelTaxonomyMetadataItem(MetadataTaxonomyKeys.ARTIFACT_TEST_RESULT)
    probe._value = worst_case_test_results()
    return probe.size() + len(", ")


def place_hyperparameters(
    taxonomy: ModelTaxonomyMetadata,
    hyperparameters: dict | None,
    artifact_dir: str | os.PathLike | None = None,
    max_inline_bytes: int = HYPERPARAMETERS_MAX_INLINE_BYTES,
    force_overwrite: bool = False,
) -> str | None:
    """Put ``hyperparameters`` into the taxonomy, or into ``hyperparameters.json`` when too big.

    Too big means the item would exceed ``max_inline_bytes`` or push the (linked) metadata,
    with the space kept for ArtifactTestResults, past 32,000 bytes. The file is written
    atomically in ``artifact_dir`` and the taxonomy value becomes the pointer
    ``{"file": "hyperparameters.json"}``. Returns the file path, or None when the values
    stayed inline. Without ``artifact_dir`` a too-big value raises. An existing
    file with the same bytes is kept; a different one raises ArtifactFileExistsError unless
    ``force_overwrite``.
    """
    key = MetadataTaxonomyKeys.HYPERPARAMETERS
    check_taxonomy_value(key, hyperparameters)
    item = taxonomy[key]
    previous = item.value
    item._value = hyperparameters
    inline_size = item.size()
    fits = inline_size <= max_inline_bytes and taxonomy.budget_size() <= METADATA_SIZE_LIMIT
    item._value = previous
    if fits:
        item.value = hyperparameters
        return None
    if artifact_dir is None:
        raise InvalidMetadataValue(
            f"The hyperparameters take {inline_size} bytes, more than the {max_inline_bytes} "
            "that fit in the model catalog metadata. Pass artifact_dir so they are stored in "
            f"{HYPERPARAMETERS_FILE_NAME} inside the artifact."
        )
    if not os.path.isdir(artifact_dir):
        raise InvalidMetadataType(
            f"artifact_dir {os.fspath(artifact_dir)!r} is not an existing folder; create the "
            "artifact folder (prepare) before placing hyperparameters in it."
        )
    path = os.path.join(os.path.abspath(os.fspath(artifact_dir)), HYPERPARAMETERS_FILE_NAME)
    text = json.dumps(hyperparameters, indent=2, sort_keys=True)
    item.value = {"file": HYPERPARAMETERS_FILE_NAME}
    try:
        write_converging(path, text.encode("utf-8"), force_overwrite)
        return path
    except BaseException:
        item._value = previous
        raise


def populate_taxonomy(
    taxonomy: ModelTaxonomyMetadata,
    model: Any = None,
    *,
    use_case_type: str | None = None,
    artifact_dir: str | os.PathLike | None = None,
    force_overwrite: bool = False,
) -> FrameworkInfo:
    """Fill UseCaseType (kept when None) and what :func:`detect_framework` finds in ``model``.

    Values are validated before anything changes; large hyperparameters go to
    ``hyperparameters.json`` in ``artifact_dir`` (see :func:`place_hyperparameters`).
    """
    keys = MetadataTaxonomyKeys
    check_taxonomy_value(keys.USE_CASE_TYPE, use_case_type)
    info = detect_framework(model) if model is not None else FrameworkInfo()
    values = {
        keys.FRAMEWORK: info.framework,
        keys.FRAMEWORK_VERSION: info.framework_version,
        keys.ALGORITHM: info.algorithm,
        keys.HYPERPARAMETERS: None,
    }
    if use_case_type is not None:
        values[keys.USE_CASE_TYPE] = use_case_type
    snapshot = {key: taxonomy[key].value for key in values}
    taxonomy.update_values(**values)
    try:
        place_hyperparameters(
            taxonomy, info.hyperparameters, artifact_dir, force_overwrite=force_overwrite
        )
    except BaseException:
        taxonomy.update_values(**snapshot)
        raise
    return info
