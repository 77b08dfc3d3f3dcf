"""Custom model metadata: free-form items checked against the catalog's limits when added."""

from __future__ import annotations

from typing import Any

from ocimodel.metadata.base import ModelMetadata
from ocimodel.metadata.enums import (
    MetadataCustomCategory,
    MetadataCustomKeys,
    MetadataCustomPrintColumns,
)
from ocimodel.metadata.errors import InvalidMetadataType, InvalidMetadataValue, MetadataItemExists
from ocimodel.metadata.items import ModelCustomMetadataItem, check_custom_key
from ocimodel.metadata.limits import CUSTOM_METADATA_LIST


class ModelCustomMetadata(ModelMetadata):
    """Custom metadata items keyed by ``key``.

    ``add`` validates key, value, description and category and, when the collection is linked
    to a taxonomy collection, the shared 32,000-byte budget, so the save stage never fails on it.
    """

    CATALOG_LIST = CUSTOM_METADATA_LIST
    DEFAULT_FILE_NAME = "metadata_custom.json"

    def add(
        self,
        key: str,
        value: Any,
        description: str = "",
        category: str = MetadataCustomCategory.OTHER,
        replace: bool = False,
    ) -> None:
        """Add an item; replace an existing one only when ``replace`` is True."""
        key = check_custom_key(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InvalidMetadataValue(
                f"The value of metadata {key!r} is empty; give it a value, or remove the item."
            )
        if not isinstance(description, str):
            raise InvalidMetadataType(
                f"The description of metadata {key!r} must be a string, got "
                f"{type(description).__name__}."
            )
        if key in self._items and not replace:
            raise MetadataItemExists(key)
        item = ModelCustomMetadataItem(key, value, description, category)
        previous = self._items.get(key)
        self._items[key] = item
        try:
            self.validate_size()
        except Exception:
            if previous is None:
                del self._items[key]
            else:
                self._items[key] = previous
            raise
        if previous is not None:
            previous._owner = None
        item._owner = self

    def remove(self, key: str) -> None:
        """Remove the item with ``key`` (error if there is none)."""
        item = self.get(key)
        item._owner = None
        del self._items[key]

    def clear(self) -> None:
        """Remove every item."""
        for item in self._items.values():
            item._owner = None
        self._items.clear()

    def isempty(self) -> bool:
        """True when there are no items."""
        return not self._items

    def set_training_data(self, path: str, data_size: str | None = None) -> None:
        """Record where the training data lives and, optionally, its size."""
        self._set_dataset(
            MetadataCustomKeys.TRAINING_DATASET,
            MetadataCustomKeys.TRAINING_DATASET_SIZE,
            "training",
            path,
            data_size,
        )

    def set_validation_data(self, path: str, data_size: str | None = None) -> None:
        """Record where the validation data lives and, optionally, its size."""
        self._set_dataset(
            MetadataCustomKeys.VALIDATION_DATASET,
            MetadataCustomKeys.VALIDATION_DATASET_SIZE,
            "validation",
            path,
            data_size,
        )

    def _set_dataset(
        self, path_key: str, size_key: str, kind: str, path: Any, data_size: Any
    ) -> None:
        """Add the path item and the size item of a dataset, or neither."""
        if not isinstance(path, str) or not path:
            raise InvalidMetadataType(
                f"The {kind} data path must be a non-empty string, got {path!r}."
            )
        if data_size is not None and not isinstance(data_size, (str, int)):
            raise InvalidMetadataType(
                f"The {kind} data size must be a string or int, got {type(data_size).__name__}."
            )
        category = MetadataCustomCategory.TRAINING_AND_VALIDATION_DATASETS
        snapshot = dict(self._items)
        try:
            self.add(path_key, path, f"The {kind} dataset path.", category, replace=True)
            if data_size is not None:
                self.add(size_key, str(data_size), f"The {kind} dataset size.", category, True)
        except Exception:
            self._items = snapshot
            for item in self._items.values():
                item._owner = self
            raise

    def to_dataframe(self):
        """Items as a DataFrame with columns Key, Value, Description, Category."""
        import pandas as pd

        cols = MetadataCustomPrintColumns
        rows = [
            {
                cols.KEY: item.key,
                cols.VALUE: item.value,
                cols.DESCRIPTION: item.description,
                cols.CATEGORY: item.category,
            }
            for item in self._items.values()
        ]
        return pd.DataFrame(rows, columns=MetadataCustomPrintColumns.values())

    @classmethod
    def from_dict(cls, data: dict) -> ModelCustomMetadata:
        """Build from ``{"metadata": [{"key", "value", "description", "category"}, ...]}``."""
        entries = cls._metadata_list(data, cls.__name__)
        metadata = cls()
        for entry in entries:
            item = ModelCustomMetadataItem.from_dict(entry)
            if item.key in metadata._items:
                raise MetadataItemExists(item.key)
            metadata._items[item.key] = item
        metadata.validate_size()
        for item in metadata._items.values():
            item._owner = metadata
        return metadata
