"""Prefect tasks of the save stage: save to the model catalog, upload an artifact, download a
model, create a version set.

Each wraps one core function. ``save_model`` is retried on transient errors and a retry never
makes a second model: the core finds the model an earlier attempt created by its
``ocimodel-save-id`` tag (see :mod:`ocimodel.save`). Uploads and downloads show a Prefect
progress artifact while they run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from ocimodel.artifact.downloader import fetch_artifact
from ocimodel.artifact.uploader import upload_artifact_zip
from ocimodel.model_version_set import ModelVersionSet
from ocimodel.oci import catalog
from ocimodel.save import SaveSpec
from ocimodel.save import save_model as save_to_catalog
from ocimodel.tasks._links import model_console_link, region_of
from ocimodel.tasks._progress import progress_artifacts
from ocimodel.tasks._retry import REMOTE_TASK

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

MODEL_ARTIFACT_KEY = "saved-model"
UPLOAD_PROGRESS_KEY = "model-upload"
DOWNLOAD_PROGRESS_KEY = "model-download"


@task(name="save-model", **REMOTE_TASK)
def save_model(
    artifact_dir: str,
    properties: Mapping[str, Any] | None = None,
    auth: AuthLike = None,
    **options: Any,
) -> str:
    """Saves the prepared artifact in ``artifact_dir`` to the model catalog; returns the model
    OCID. ``options`` are :class:`ocimodel.save.SaveSpec` fields (display_name, bucket_uri,
    compartment_id, project_id, model_version_set, version_label...)."""
    logger = get_run_logger()
    with progress_artifacts(UPLOAD_PROGRESS_KEY):
        saved = save_to_catalog(
            artifact_dir, SaveSpec.of(**options), properties=properties, auth=auth
        )
    region = region_of(saved.model_id, auth)
    create_markdown_artifact(
        key=MODEL_ARTIFACT_KEY,
        markdown=(
            f"**Model** `{saved.model_id}` ({saved.model.display_name})\n\n"
            f"[Open in the OCI console]({model_console_link(saved.model_id, region)})"
        ),
        description="The model in the OCI Data Science model catalog",
    )
    what = (
        "Created and uploaded" if saved.created else "Found" if not saved.uploaded else "Uploaded"
    )
    logger.info("%s model %s (%s)", what, saved.model_id, saved.model.display_name)
    return saved.model_id


@task(name="upload-artifact", **REMOTE_TASK)
def upload_artifact(
    artifact_dir: str,
    uri: str,
    name: str | None = None,
    auth: AuthLike = None,
    force_overwrite: bool = False,
    parallel_process_count: int = 9,
) -> str:
    """Zips the artifact to a local folder or an ``oci://`` prefix; returns where it went."""
    with progress_artifacts(UPLOAD_PROGRESS_KEY):
        target = upload_artifact_zip(
            artifact_dir,
            uri,
            name=name or os.path.basename(os.path.abspath(artifact_dir)),
            auth=auth,
            force_overwrite=force_overwrite,
            parallel_process_count=parallel_process_count,
        )
    get_run_logger().info("Uploaded the artifact of %s to %s", artifact_dir, target)
    return target


@task(name="download-model", **REMOTE_TASK)
def download_model(
    model_id: str,
    artifact_dir: str,
    auth: AuthLike = None,
    force_overwrite: bool = False,
    bucket_uri: str | None = None,
    remove_existing_artifact: bool = True,
) -> str:
    """Downloads a model's artifact (manifest verified, extracted safely) into
    ``artifact_dir``; returns the folder."""
    with progress_artifacts(DOWNLOAD_PROGRESS_KEY):
        folder = fetch_artifact(
            model_id,
            artifact_dir,
            auth=auth,
            force_overwrite=force_overwrite,
            bucket_uri=bucket_uri,
            remove_existing_artifact=remove_existing_artifact,
        )
    get_run_logger().info("Downloaded the artifact of %s into %s", model_id, folder)
    return folder


@task(name="create-version-set", **REMOTE_TASK)
def create_version_set(
    name: str,
    compartment_id: str | None = None,
    project_id: str | None = None,
    description: str | None = None,
    auth: AuthLike = None,
) -> str:
    """Creates a model version set, or finds the one of that name; returns its OCID."""
    builder = ModelVersionSet(auth=auth).with_name(name)
    if compartment_id:
        builder = builder.with_compartment_id(compartment_id)
    if project_id:
        builder = builder.with_project_id(project_id)
    if description:
        builder = builder.with_description(description)
    version_set = builder.create()
    get_run_logger().info("Model version set %s (%s)", version_set.id, name)
    return version_set.id


STATUS_TAG = "ocimodel-status"
"""Freeform tag on a model that was saved but never went live (value :data:`FAILED_STATUS`)."""
FAILED_STATUS = "failed"


@task(name="mark-model-failed", **REMOTE_TASK)
def mark_model_failed(auth: AuthLike, model_id: str) -> None:
    """Tags the model ``ocimodel-status: failed`` (its other tags kept), so the catalog shows
    that it never went live."""
    model = catalog.get_model(auth, model_id)
    tags = {**dict(model.freeform_tags or {}), STATUS_TAG: FAILED_STATUS}
    catalog.update_model(auth, model_id, freeform_tags=tags)
    get_run_logger().warning("Tagged model %s %s: %s", model_id, STATUS_TAG, FAILED_STATUS)


@task(name="delete-model", **REMOTE_TASK)
def delete_model(auth: AuthLike, model_id: str) -> None:
    """Deletes the model from the catalog (one already deleted is left as is)."""
    catalog.delete_model(auth, model_id)
    get_run_logger().info("Deleted model %s", model_id)
