"""SERDE, the protocol both serializer roles share (``name``, ``serialize``, ``deserialize``).

Any SERDE instance, or any object with ``serialize`` and ``deserialize``, is accepted in either
role: as a model save serializer or as a model input serializer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class SERDE(ABC):
    """Serializes and deserializes one kind of value; subclass it for a custom serializer."""

    name: str = "custom"

    @abstractmethod
    def serialize(self, data: Any) -> Any:
        """Turn ``data`` into its serialized form."""

    @abstractmethod
    def deserialize(self, data: Any) -> Any:
        """Turn a serialized form back into the value."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _is_serde_like(value: Any) -> bool:
    return callable(getattr(value, "serialize", None)) and callable(
        getattr(value, "deserialize", None)
    )
