"""The model catalog's metadata limits and the one way to measure metadata size.

Size definition (used at ``add`` time and by the save stage alike): the number of bytes of

    json.dumps({"customMetadataList": [...], "definedMetadataList": [...]})

where each list holds one ``{"key", "value", "description", "category"}`` object per item that
has a value, fields that are ``None`` left out, non-string values JSON-encoded to a string.
``json.dumps`` runs with its defaults, exactly as the oci SDK serializes a request body (ASCII
output, non-ASCII characters escaped as ``\\uXXXX``), so the number is the size on the wire.
Custom and taxonomy (defined) metadata share one 32,000-byte budget.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from ocimodel.errors import MetadataSizeTooLarge

METADATA_SIZE_LIMIT = 32000
METADATA_KEY_LENGTH_LIMIT = 255
METADATA_VALUE_LENGTH_LIMIT = 255
METADATA_DESCRIPTION_LENGTH_LIMIT = 255
CUSTOM_METADATA_LIST = "customMetadataList"
DEFINED_METADATA_LIST = "definedMetadataList"


class CatalogItems(Protocol):
    """Anything that can list its items in the catalog's wire form."""

    def catalog_items(self) -> list[dict[str, str]]: ...


def catalog_value(value: Any) -> str | None:
    """The string the catalog stores for a metadata value (JSON for non-strings)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def catalog_metadata_payload(
    custom: CatalogItems | None = None, taxonomy: CatalogItems | None = None
) -> dict[str, list[dict[str, str]]]:
    """The ``customMetadataList``/``definedMetadataList`` part of a create/update model body."""
    return {
        CUSTOM_METADATA_LIST: custom.catalog_items() if custom is not None else [],
        DEFINED_METADATA_LIST: taxonomy.catalog_items() if taxonomy is not None else [],
    }


def payload_size(payload: dict[str, Iterable[dict[str, str]]]) -> int:
    """Bytes of a metadata payload as the oci SDK sends it."""
    return len(json.dumps(payload).encode("utf-8"))


def catalog_metadata_size(
    custom: CatalogItems | None = None, taxonomy: CatalogItems | None = None
) -> int:
    """Total metadata size in bytes, measured as this module's docstring defines."""
    return payload_size(catalog_metadata_payload(custom, taxonomy))


def validate_catalog_metadata_size(
    custom: CatalogItems | None = None,
    taxonomy: CatalogItems | None = None,
    limit: int = METADATA_SIZE_LIMIT,
) -> int:
    """Return the total metadata size; raise MetadataSizeTooLarge if it exceeds ``limit``."""
    size = catalog_metadata_size(custom, taxonomy)
    if size > limit:
        raise MetadataSizeTooLarge(size, limit)
    return size
