"""The artifact stage: the folder (:class:`ModelArtifact`), its zip and safe extraction
(:mod:`.archive`) and its sha256 manifest (:mod:`.manifest`).

``ModelArtifact`` is imported on first use, so importing :mod:`ocimodel.artifact.manifest`
from a stage that ``ModelArtifact`` itself builds on does not import the whole facade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ModelArtifact"]


def __getattr__(name: str) -> Any:
    if name == "ModelArtifact":
        from ocimodel.artifact.model_artifact import ModelArtifact

        return ModelArtifact
    raise AttributeError(f"module 'ocimodel.artifact' has no attribute {name!r}")


if TYPE_CHECKING:
    from ocimodel.artifact.model_artifact import ModelArtifact
