"""Taxonomy and custom metadata items, validated the moment they are set."""

from __future__ import annotations

from typing import Any

from ocimodel.errors import MetadataDescriptionTooLong, MetadataValueTooLong
from ocimodel.metadata.base import ModelMetadataItem, ensure_json_value
from ocimodel.metadata.enums import (
    Framework,
    MetadataCustomCategory,
    MetadataTaxonomyKeys,
    UseCaseType,
)
from ocimodel.metadata.errors import InvalidMetadataType, InvalidMetadataValue
from ocimodel.metadata.limits import (
    METADATA_DESCRIPTION_LENGTH_LIMIT,
    METADATA_KEY_LENGTH_LIMIT,
    METADATA_VALUE_LENGTH_LIMIT,
    catalog_value,
)

_ENUM_KEYS = {
    MetadataTaxonomyKeys.USE_CASE_TYPE: UseCaseType,
    MetadataTaxonomyKeys.FRAMEWORK: Framework,
}
_STRING_KEYS = {MetadataTaxonomyKeys.FRAMEWORK_VERSION, MetadataTaxonomyKeys.ALGORITHM}
_DICT_KEYS = {MetadataTaxonomyKeys.HYPERPARAMETERS, MetadataTaxonomyKeys.ARTIFACT_TEST_RESULT}


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for error messages."""
    return text if len(text) <= limit else text[:limit] + "..."


def check_taxonomy_value(key: str, value: Any) -> None:
    """Raise a typed error unless ``value`` is acceptable for taxonomy ``key``."""
    if value is None:
        return
    if key in _ENUM_KEYS:
        allowed = _ENUM_KEYS[key].values()
        if value not in allowed:
            raise InvalidMetadataValue(
                f"{value!r} is not a valid {key}. Use one of: {', '.join(allowed)} "
                f"(for example {_ENUM_KEYS[key].__name__}.{_ENUM_KEYS[key].keys()[0]})."
            )
    elif key in _STRING_KEYS:
        if not isinstance(value, str):
            raise InvalidMetadataType(
                f"The taxonomy value of {key!r} must be a string, got {type(value).__name__} "
                f"{_short(repr(value))}."
            )
    elif key in _DICT_KEYS:
        if not isinstance(value, dict):
            raise InvalidMetadataType(
                f"The taxonomy value of {key!r} must be a dict, got {type(value).__name__} "
                f"{_short(repr(value))}."
            )
        ensure_json_value(key, value)


class ModelTaxonomyMetadataItem(ModelMetadataItem):
    """A taxonomy (defined) metadata item: one of the fixed keys and a validated value."""

    def __init__(self, key: str, value: Any = None):
        if key not in MetadataTaxonomyKeys:
            raise InvalidMetadataValue(
                f"{key!r} is not a taxonomy key. Use one of: "
                f"{', '.join(MetadataTaxonomyKeys.values())}; put anything else in custom metadata."
            )
        check_taxonomy_value(key, value)
        self._key = str(key)
        self._value = value

    @property
    def key(self) -> str:
        return self._key

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        check_taxonomy_value(self._key, value)
        self._assign(value=value)

    def update(self, value: Any) -> None:
        """Set the value (validated)."""
        self.value = value

    def reset(self) -> None:
        """Set the value to None."""
        self._assign(value=None)

    def validate(self) -> bool:
        """Check the value against the key's rules (enumerations, types, JSON)."""
        check_taxonomy_value(self._key, self._value)
        return True

    def catalog_item(self) -> dict[str, str] | None:
        if self._value is None:
            return None
        return {"key": self._key, "value": catalog_value(self._value)}

    def to_dict(self) -> dict:
        return {"key": self._key, "value": self._value}

    @classmethod
    def from_dict(cls, data: dict) -> ModelTaxonomyMetadataItem:
        if not isinstance(data, dict) or "key" not in data:
            raise InvalidMetadataValue(
                f"A taxonomy item must be a dict with 'key' and 'value', got {_short(repr(data))}."
            )
        return cls(key=data["key"], value=data.get("value"))


def check_custom_key(key: Any) -> str:
    """Return ``key`` if it is a usable custom metadata key, else raise a typed error."""
    if not isinstance(key, str):
        raise InvalidMetadataType(
            f"The metadata key must be a string, got {type(key).__name__} {_short(repr(key))}."
        )
    if not key.strip():
        raise InvalidMetadataValue("The metadata key is empty; give the item a non-empty key.")
    if len(key) > METADATA_KEY_LENGTH_LIMIT:
        raise MetadataValueTooLong(_short(key), len(key), METADATA_KEY_LENGTH_LIMIT, what="key")
    return key


def check_custom_value(key: str, value: Any) -> None:
    """Raise a typed error unless ``value`` fits a custom item (JSON, at most 255 characters)."""
    if value is None:
        return
    ensure_json_value(key, value)
    text = catalog_value(value)
    if len(text) > METADATA_VALUE_LENGTH_LIMIT:
        raise MetadataValueTooLong(_short(key), len(text), METADATA_VALUE_LENGTH_LIMIT)


def check_description(key: str, description: Any) -> None:
    """Raise a typed error unless ``description`` is None or a string of at most 255 chars."""
    if description is None:
        return
    if not isinstance(description, str):
        raise InvalidMetadataType(
            f"The description of metadata {key!r} must be a string, got "
            f"{type(description).__name__}."
        )
    if len(description) > METADATA_DESCRIPTION_LENGTH_LIMIT:
        raise MetadataDescriptionTooLong(
            _short(key), len(description), METADATA_DESCRIPTION_LENGTH_LIMIT
        )


def check_category(key: str, category: Any) -> None:
    """Raise InvalidMetadataValue unless ``category`` is None or a MetadataCustomCategory."""
    if category is not None and category not in MetadataCustomCategory:
        raise InvalidMetadataValue(
            f"{category!r} is not a metadata category (item {key!r}). Use one of: "
            f"{', '.join(repr(c) for c in MetadataCustomCategory.values())}."
        )


class ModelCustomMetadataItem(ModelTaxonomyMetadataItem):
    """A custom metadata item: free key, value, description and category within the limits."""

    def __init__(
        self,
        key: str,
        value: Any = None,
        description: str | None = None,
        category: str | None = None,
    ):
        key = check_custom_key(key)
        check_custom_value(key, value)
        check_description(key, description)
        check_category(key, category)
        self._key = key
        self._value = value
        self._description = description
        self._category = category

    @property
    def key(self) -> str:
        return self._key

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        check_custom_value(self._key, value)
        self._assign(value=value)

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, description: str | None) -> None:
        check_description(self._key, description)
        self._assign(description=description)

    @property
    def category(self) -> str | None:
        return self._category

    @category.setter
    def category(self, category: str | None) -> None:
        check_category(self._key, category)
        self._assign(category=category)

    def update(self, value: Any, description: str | None, category: str | None) -> None:
        """Set value, description and category together (all validated before any change)."""
        check_custom_value(self._key, value)
        check_description(self._key, description)
        check_category(self._key, category)
        self._assign(value=value, description=description, category=category)

    def reset(self) -> None:
        """Set value, description and category to None."""
        self._assign(value=None, description=None, category=None)

    def validate(self) -> bool:
        """Check key, value, description and category against the catalog's rules."""
        check_custom_key(self._key)
        check_custom_value(self._key, self._value)
        check_description(self._key, self._description)
        check_category(self._key, self._category)
        return True

    def catalog_item(self) -> dict[str, str] | None:
        if self._value is None:
            return None
        item = {"key": self._key, "value": catalog_value(self._value)}
        if self._description is not None:
            item["description"] = self._description
        if self._category is not None:
            item["category"] = self._category
        return item

    def to_dict(self) -> dict:
        return {
            "key": self._key,
            "value": self._value,
            "description": self._description,
            "category": self._category,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelCustomMetadataItem:
        if not isinstance(data, dict) or "key" not in data:
            raise InvalidMetadataValue(
                f"A custom item must be a dict with 'key' and 'value', got {_short(repr(data))}."
            )
        return cls(
            key=data["key"],
            value=data.get("value"),
            description=data.get("description"),
            category=data.get("category"),
        )
