"""Prefect tasks that bring a model in from outside a run: a serialized model file, or an
artifact someone already prepared (a folder or an archive, local or ``oci://``).

Both are safe to re-run. ``stage_artifact`` converges: a file already holding the incoming
bytes is left untouched (so its modification time, part of the save's identity, stays and a
re-run saves nothing new), and nothing in ``artifact_dir`` changes until the source has been
fetched and checked.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from ocimodel.artifact.source import place_artifact
from ocimodel.errors import ArtifactInputError, ArtifactSourceNotFoundError
from ocimodel.files import is_oci_uri, local_path
from ocimodel.layout import DEFAULT_MODEL_SAVE_SERIALIZER
from ocimodel.oci.storage import copy_uri, uri_exists
from ocimodel.serde import get_model_save_serializer
from ocimodel.tasks._retry import REMOTE_TASK

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike


@task(name="load-model-file", **REMOTE_TASK)
def load_model_file(
    model_uri: str,
    model_save_serializer: str = DEFAULT_MODEL_SAVE_SERIALIZER,
    auth: AuthLike = None,
) -> Any:
    """Loads a serialized model (a local path or ``oci://`` URI) with the model save serializer
    that wrote it (``cloudpickle``, ``joblib``...). Unpickles: give only your own model files."""
    serializer = get_model_save_serializer(model_save_serializer)
    remote = is_oci_uri(model_uri)
    if not (uri_exists(model_uri, auth) if remote else os.path.isfile(local_path(model_uri))):
        raise ArtifactSourceNotFoundError(
            f"Model file {model_uri!r} does not exist; check the path (and auth for oci://)."
        )
    if not remote:
        model = serializer.load(local_path(model_uri))
    else:
        with tempfile.TemporaryDirectory(prefix="ocimodel-model-") as scratch:
            local = os.path.join(scratch, model_uri.rstrip("/").rsplit("/", 1)[-1] or "model")
            copy_uri(model_uri, local, auth)
            model = serializer.load(local)
    get_run_logger().info(
        "Loaded %s from %s with %s", type(model).__name__, model_uri, serializer.name
    )
    return model


@task(name="stage-artifact", **REMOTE_TASK)
def stage_artifact(
    artifact_uri: str,
    artifact_dir: str | None = None,
    model_file_name: str | None = None,
    force_overwrite: bool = False,
    auth: AuthLike = None,
) -> str:
    """Puts a prepared artifact (folder, .zip or .tar(.gz), local or ``oci://``) into
    ``artifact_dir`` and returns that folder; a local folder with no ``artifact_dir`` is used
    where it is. The source is checked (structure, runtime.yaml) before anything is moved."""
    logger = get_run_logger()
    if artifact_dir is None:
        source = None if is_oci_uri(artifact_uri) else local_path(artifact_uri)
        if source is None or not os.path.isdir(source):
            raise ArtifactInputError(
                f"artifact_uri {artifact_uri!r} is not a local folder: pass artifact_dir, the "
                "folder to unpack it into."
            )
        artifact_dir = source
    folder = place_artifact(artifact_uri, artifact_dir, model_file_name, force_overwrite, auth)
    logger.info("Staged %s in %s", artifact_uri, folder)
    return folder
