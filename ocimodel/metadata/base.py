"""Abstract model metadata item and collection: serialization, lookup and the size budget."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from ocimodel.errors import MetadataSizeTooLarge
from ocimodel.metadata.errors import (
    InvalidMetadataType,
    InvalidMetadataValue,
    MetadataBudgetTooLarge,
    MetadataItemNotFound,
)
from ocimodel.metadata.fileio import write_text
from ocimodel.metadata.limits import (
    CUSTOM_METADATA_LIST,
    DEFINED_METADATA_LIST,
    METADATA_SIZE_LIMIT,
    catalog_metadata_size,
    payload_size,
)

_MISSING = object()


def ensure_json_value(key: str, value: Any) -> None:
    """Raise InvalidMetadataValue unless ``value`` is strict JSON (no NaN, no objects)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMetadataValue(
            f"The value of metadata {key!r} cannot be stored as JSON ({exc}); got "
            f"{type(value).__name__}. Pass a string, number, bool, list or dict of those."
        ) from None


class ModelMetadataItem(ABC):
    """One metadata item: a key and a value, serializable on its own."""

    _owner: ModelMetadata | None = None

    @property
    @abstractmethod
    def key(self) -> str:
        """The item's key."""

    @abstractmethod
    def to_dict(self) -> dict:
        """The item as a dictionary."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict) -> ModelMetadataItem:
        """Build an item from ``to_dict()`` output."""

    @abstractmethod
    def validate(self) -> bool:
        """Check the item; raise a typed error if it is invalid."""

    @abstractmethod
    def reset(self) -> None:
        """Clear everything but the key."""

    @abstractmethod
    def catalog_item(self) -> dict[str, str] | None:
        """The item as the catalog receives it, or None when it has no value to send."""

    @property
    @abstractmethod
    def value(self) -> Any:
        """The item's value."""

    def size(self) -> int:
        """Bytes of this item in the catalog payload (0 when it is not sent)."""
        item = self.catalog_item()
        return 0 if item is None else len(json.dumps(item).encode("utf-8"))

    def to_json(self) -> str:
        """The item as JSON."""
        return json.dumps(self.to_dict())

    def to_yaml(self) -> str:
        """The item as YAML."""
        import yaml

        return yaml.safe_dump(json.loads(self.to_json()), sort_keys=False)

    def to_json_file(self, file_path: str, storage_options: dict | None = None) -> str:
        """Save the item's value as JSON to a local path or an oci:// URI; return the target."""
        name = self.key.replace("/", "_").replace("\\", "_") + ".json"
        return write_text(json.dumps(self.value), file_path, name, storage_options)

    def _assign(self, **fields: Any) -> None:
        """Set private fields; undo them if the owning collection breaks its size budget."""
        previous = {name: getattr(self, f"_{name}") for name in fields}
        for name, new in fields.items():
            setattr(self, f"_{name}", new)
        if self._owner is not None:
            try:
                self._owner.validate_size()
            except Exception:
                for name, old in previous.items():
                    setattr(self, f"_{name}", old)
                raise

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return self.to_yaml()


class ModelMetadata(ABC):
    """A collection of metadata items keyed by ``key``.

    Collections linked with :meth:`link` share the catalog's 32,000-byte budget: any change that
    would push their combined size past it is refused at once with MetadataSizeTooLarge.
    """

    CATALOG_LIST: ClassVar[str]
    DEFAULT_FILE_NAME: ClassVar[str]

    def __init__(self) -> None:
        self._items: dict[str, ModelMetadataItem] = {}
        self._peers: list[ModelMetadata] = []

    # --- lookup ---------------------------------------------------------------------------

    @property
    def keys(self) -> tuple[str, ...]:
        """All registered keys."""
        return tuple(self._items)

    def get(self, key: str, value: Any = _MISSING) -> ModelMetadataItem | Any:
        """The item with ``key``; ``value`` if given and the key is unknown, else an error."""
        if not isinstance(key, str) or not key:
            raise InvalidMetadataType(f"The metadata key must be a non-empty string, got {key!r}.")
        if key in self._items:
            return self._items[key]
        if value is not _MISSING:
            return value
        raise MetadataItemNotFound(key, self._items)

    def __getitem__(self, key: str) -> ModelMetadataItem:
        return self.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[ModelMetadataItem]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    # --- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Reset every item to empty values (keys stay)."""
        for item in self._items.values():
            item.reset()

    def validate(self) -> bool:
        """Validate every item and the shared size budget."""
        for item in self._items.values():
            item.validate()
        self.validate_size()
        return True

    # --- size -----------------------------------------------------------------------------

    def catalog_items(self) -> list[dict[str, str]]:
        """The items the catalog receives, in order; items without a value are left out."""
        return [d for d in (item.catalog_item() for item in self._items.values()) if d is not None]

    def size(self) -> int:
        """Bytes of this collection alone in the catalog payload."""
        return payload_size({self.CATALOG_LIST: self.catalog_items()})

    def link(self, other: ModelMetadata) -> None:
        """Make this collection and ``other`` share the catalog's size budget (checked now)."""
        if other.CATALOG_LIST == self.CATALOG_LIST:
            raise InvalidMetadataValue(
                f"Cannot link two {type(self).__name__} collections: the budget is shared by "
                "one custom and one taxonomy collection."
            )
        before = (list(self._peers), list(other._peers))
        for a, b in ((self, other), (other, self)):
            a._peers = [p for p in a._peers if p.CATALOG_LIST != b.CATALOG_LIST] + [b]
        try:
            self.validate_size()
        except Exception:
            self._peers, other._peers = before
            raise

    def total_size(self) -> int:
        """Bytes of this collection plus its linked peer, as the save stage will send them."""
        by_list = {self.CATALOG_LIST: self, **{p.CATALOG_LIST: p for p in self._peers}}
        return catalog_metadata_size(
            by_list.get(CUSTOM_METADATA_LIST), by_list.get(DEFINED_METADATA_LIST)
        )

    def reserved_size(self) -> int:
        """Bytes of the budget kept free for items this collection fills in later."""
        return 0

    def budget_reserve(self) -> int:
        """Bytes kept free by this collection and its linked peer."""
        by_list = {self.CATALOG_LIST: self, **{p.CATALOG_LIST: p for p in self._peers}}
        return sum(collection.reserved_size() for collection in by_list.values())

    def budget_size(self) -> int:
        """:meth:`total_size` plus :meth:`budget_reserve`: what the 32,000-byte limit checks."""
        return self.total_size() + self.budget_reserve()

    def validate_size(self) -> bool:
        """Raise MetadataSizeTooLarge when this collection and its peer, with the space kept
        free for later items (:meth:`budget_reserve`), exceed 32,000 bytes."""
        size, reserved = self.total_size(), self.budget_reserve()
        if size + reserved > METADATA_SIZE_LIMIT:
            if reserved:
                raise MetadataBudgetTooLarge(size, reserved, METADATA_SIZE_LIMIT)
            raise MetadataSizeTooLarge(size, METADATA_SIZE_LIMIT)
        return True

    # --- serialization --------------------------------------------------------------------

    def to_dict(self) -> dict:
        """``{"metadata": [item dicts]}``."""
        return {"metadata": [item.to_dict() for item in self._items.values()]}

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict) -> ModelMetadata:
        """Build a collection from ``to_dict()`` output."""

    def to_json(self) -> str:
        """The collection as JSON."""
        return json.dumps(self.to_dict())

    def to_yaml(self) -> str:
        """The collection as YAML."""
        import yaml

        return yaml.safe_dump(json.loads(self.to_json()), sort_keys=False)

    def to_json_file(self, file_path: str, storage_options: dict | None = None) -> str:
        """Save the collection as JSON to a local path or an oci:// URI; return the target."""
        return write_text(self.to_json(), file_path, self.DEFAULT_FILE_NAME, storage_options)

    @abstractmethod
    def to_dataframe(self):
        """The collection as a pandas DataFrame."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        import yaml

        return yaml.safe_dump(json.loads(self.to_json())["metadata"], sort_keys=False)

    @staticmethod
    def _metadata_list(data: Any, cls_name: str) -> list[dict]:
        """The item list of a ``{"metadata": [...]}`` dict, checked."""
        if not isinstance(data, dict) or not isinstance(data.get("metadata"), list):
            raise InvalidMetadataValue(
                f"{cls_name}.from_dict expects "
                "{'metadata': [{'key': ..., 'value': ...}, ...]}, "
                f"got {type(data).__name__}: {str(data)[:100]!r}."
            )
        for entry in data["metadata"]:
            if not isinstance(entry, dict) or "key" not in entry:
                raise InvalidMetadataValue(
                    f"{cls_name}.from_dict: every entry of 'metadata' must be a dict with a 'key'; "
                    f"got {str(entry)[:100]!r}."
                )
        return data["metadata"]
