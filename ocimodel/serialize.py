"""The serialize stage: the trained model written into the artifact by its save serializer.

The model goes to a temporary file first and is put in place last (:class:`PendingSerialization`),
so a failed prepare leaves an existing model file untouched. An existing file with the same
bytes is kept, so a re-run converges; a different one is replaced only with ``force_overwrite``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from ocimodel.artifact.manifest import discard_stale_manifest
from ocimodel.errors import ArtifactFileExistsError, ArtifactPathIsFolderError, PrepareError
from ocimodel.files import ensure_artifact_dir, same_bytes
from ocimodel.layout import DEFAULT_MODEL_SAVE_SERIALIZER
from ocimodel.serde import get_model_save_serializer


@dataclass(frozen=True)
class SerializedModel:
    """The serialized model file: its name in the artifact, serializer and size.

    The sha256 is not computed here (hashing would cost more than the save); the manifest
    is written when the artifact is zipped, from the bytes that go into the zip.
    """

    file_name: str
    serializer: str
    size: int
    written: bool = True


def model_file_name_for(
    model_save_serializer: Any = DEFAULT_MODEL_SAVE_SERIALIZER, name: str | None = None
) -> str:
    """The model file name: the given one, else the serializer's default (``model.pkl``...)."""
    if name:
        if os.path.basename(name) != name or name in (".", ".."):
            raise PrepareError(
                f"model_file_name {name!r} must be a plain file name (no folders), "
                "e.g. 'model.pkl'."
            )
        return name
    return get_model_save_serializer(model_save_serializer).file_name


def serialize_model(
    model: Any,
    artifact_dir: str,
    *,
    model_file_name: str | None = None,
    model_save_serializer: Any = DEFAULT_MODEL_SAVE_SERIALIZER,
    force_overwrite: bool = False,
) -> SerializedModel:
    """Saves ``model`` into the artifact with the save serializer.

    An existing file with the same bytes is kept; a different one is replaced only with
    ``force_overwrite``.
    """
    return start_serialization(
        model,
        artifact_dir,
        model_file_name=model_file_name,
        model_save_serializer=model_save_serializer,
        force_overwrite=force_overwrite,
    ).finish()


class PendingSerialization:
    """A model written to a temporary file, not yet in place.

    :meth:`finish` puts the file in place (or keeps an identical one); :meth:`abort` discards
    it. Keeping the model aside until the other steps succeed means a failed prepare leaves
    an existing model file untouched.
    """

    def __init__(self, folder: str, name: str, serializer: Any, force_overwrite: bool):
        self.folder, self.name, self.serializer = folder, name, serializer
        self.force_overwrite = force_overwrite
        # A fresh name, not a placeholder file: renaming over an existing file makes some
        # file systems (ext4 auto_da_alloc) flush the whole model to disk first.
        self.tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{name}")

    def start(self, model: Any) -> PendingSerialization:
        try:
            self.serializer.save(model, self.tmp, sha256=False)
        except BaseException:
            self.abort()
            raise
        return self

    def finish(self) -> SerializedModel:
        target = os.path.join(self.folder, self.name)
        try:
            if os.path.isdir(target) and not os.path.islink(target):
                raise ArtifactPathIsFolderError(target)
            size = os.path.getsize(self.tmp)
            written = True
            if os.path.exists(target):
                if same_bytes(target, self.tmp):
                    written = False
                elif not self.force_overwrite:
                    raise ArtifactFileExistsError(target)
            if written:
                os.replace(self.tmp, target)
                discard_stale_manifest(self.folder, [self.name])
        finally:
            self.abort()
        return SerializedModel(self.name, self.serializer.name, size, written)

    def abort(self) -> None:
        """Removes the temporary file (a no-op once finished)."""
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def start_serialization(
    model: Any,
    artifact_dir: str,
    *,
    model_file_name: str | None = None,
    model_save_serializer: Any = DEFAULT_MODEL_SAVE_SERIALIZER,
    force_overwrite: bool = False,
) -> PendingSerialization:
    """Writes the model to a temporary file now; call ``finish()`` on the result to place it."""
    if model is None:
        raise PrepareError(
            "There is no model to serialize; pass estimator=... or serialize=False and place "
            "the model file in artifact_dir yourself."
        )
    serializer = get_model_save_serializer(model_save_serializer)
    folder = ensure_artifact_dir(artifact_dir)
    name = model_file_name_for(serializer, model_file_name)
    return PendingSerialization(folder, name, serializer, force_overwrite).start(model)
