"""Typed errors of model metadata beyond the size/length errors of :mod:`ocimodel.errors`."""

from __future__ import annotations

from collections.abc import Iterable

from ocimodel.errors import MetadataSizeTooLarge, OcimodelError


class InvalidMetadataValue(ValueError, OcimodelError):
    """A metadata key, value or category is not acceptable (empty, not JSON, not allowed)."""


class InvalidMetadataType(TypeError, OcimodelError):
    """A metadata key, description or argument has the wrong Python type."""


class MetadataItemNotFound(ValueError, OcimodelError):
    """No metadata item has the requested key."""

    def __init__(self, key: str, known: Iterable[str]):
        self.key = key
        names = ", ".join(repr(k) for k in known) or "none"
        super().__init__(
            f"No metadata item has the key {key!r}. Known keys: {names}. "
            "Add it first, or pass a default: get(key, default)."
        )


class MetadataItemExists(ValueError, OcimodelError):
    """``add`` was asked to overwrite an item without ``replace=True``."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(
            f"A metadata item with the key {key!r} already exists. "
            "Pass replace=True to overwrite it, or remove it first."
        )


class ChangesNotCommitted(OcimodelError):
    """Files under a path have uncommitted or untracked changes in git."""

    def __init__(self, path: str, files: Iterable[str] = ()):
        self.path = path
        self.files = list(files)
        shown = "\n".join(f"  {f}" for f in self.files[:50])
        more = f"\n  ... and {len(self.files) - 50} more" if len(self.files) > 50 else ""
        super().__init__(
            f"{path} has changes that are not committed to git:\n{shown}{more}\n"
            "Commit them (git add/commit) so the model provenance points at the code that "
            "produced it, or pass ignore=True (ignore_pending_changes=True) to proceed anyway."
        )


class MetadataBudgetTooLarge(MetadataSizeTooLarge):
    """The metadata plus the space kept free for items filled in later exceed the limit."""

    def __init__(self, size: int, reserved: int, limit: int = 32000):
        self.reserved = reserved
        super().__init__(size + reserved, limit)
        self.args = (
            f"The model metadata is {size} bytes, and {reserved} more are kept free for the "
            "ArtifactTestResults that introspection records later; together that is "
            f"{size + reserved} bytes, over the {limit} the model catalog accepts. Remove "
            "items or move large values (hyperparameters, schemas) into files of the artifact.",
        )
