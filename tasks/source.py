"""Prefect tasks that bring a model in from outside a run: a serialized model file, or an
artifact someone already prepared (a folder or an archive, local or ``oci://``).

Both are safe to re-run. ``stage_artifact`` converges: a file already holding the incoming
bytes is left untouched (so its modification time, part of the save's identity, stays and a
re-run saves nothing new), and nothing in ``artifact_dir`` changes until the source has been
fetched and checked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task

from ocimodel.artifact.source import place_artifact
from ocimodel.errors import ArtifactFileExistsError, ArtifactInputError, ArtifactSourceNotFoundError
from ocimodel.files import create_temp_dir, is_oci_uri, local_path, same_bytes
from ocimodel.layout import DEFAULT_MODEL_SAVE_SERIALIZER, MANIFEST_NAME
from ocimodel.oci.storage import copy_uri, iter_files, uri_exists
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


def _converge(staged: str, target: str, force_overwrite: bool) -> int:
    """Moves the staged files into ``target``, leaving alone those it already holds; returns
    how many changed. A different existing file needs ``force_overwrite`` (checked first)."""
    incoming = [rel for rel, _ in iter_files(staged)]
    changed = []
    for rel in incoming:
        dest = os.path.join(target, *rel.split("/"))
        if not os.path.lexists(dest):
            changed.append(rel)
        elif not (os.path.isfile(dest) and same_bytes(os.path.join(staged, rel), dest)):
            changed.append(rel)
    conflicts = [rel for rel in changed if os.path.lexists(os.path.join(target, rel))]
    if conflicts and not force_overwrite:
        raise ArtifactFileExistsError([os.path.join(target, c) for c in conflicts])
    for rel in changed:
        dest = os.path.join(target, *rel.split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(os.path.join(staged, *rel.split("/")), dest)
    stale = os.path.join(target, MANIFEST_NAME)
    if MANIFEST_NAME not in incoming and os.path.exists(stale):
        os.unlink(stale)
    return len(changed)


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
    target = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir)))
    if not is_oci_uri(artifact_uri) and os.path.abspath(local_path(artifact_uri)) == target:
        folder = place_artifact(artifact_uri, target, model_file_name, auth=auth)
        logger.info("Using the artifact in %s", folder)
        return folder
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    scratch = create_temp_dir(parent, prefix=".ocimodel-stage-")
    try:
        staged = place_artifact(
            artifact_uri, os.path.join(scratch, "artifact"), model_file_name, auth=auth
        )
        os.makedirs(target, exist_ok=True)
        changed = _converge(staged, target, force_overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("Staged %s in %s (%d file(s) changed)", artifact_uri, target, changed)
    return target
