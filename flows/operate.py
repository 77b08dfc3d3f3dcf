"""Flows to run from the Prefect UI: deploy a prepared artifact, promote a model onto a live
deployment, roll the deployment back, tear it down.

Every parameter is plain JSON (text, numbers, booleans, objects), so the Prefect UI shows each
flow as a form; credentials are never parameters but the name of an ``OCICredentials`` block
(``credentials_block``; unset: the worker's environment), and defaults for the model and the
deployment come from a ``ModelDeploymentSettings`` block (``settings_block``). See
:mod:`ocimodel.flows._blocks`.

- :func:`deploy_artifact`: a prepared artifact (folder or archive, local or ``oci://``) is
  staged, introspected, saved to the model catalog and deployed; returns once ACTIVE.
- :func:`promote_model`: a live deployment is updated to serve another model without downtime
  (the service starts the new model's servers and swaps them in once healthy); the model it
  replaces is recorded in the deployment's freeform tag ``ocimodel-previous-model``. Without a
  deployment, a new one is created.
- :func:`rollback_deployment`: the deployment goes back to the model the last promote replaced
  (the tag is swapped, so a second rollback goes forward again).
- :func:`tear_down`: the deployment is deleted, and its model with ``delete_model``.

Two runs never change one deployment at the same time: each holds the deployment's Prefect
global concurrency limit (:mod:`ocimodel.flows._locks`) while it reads, updates and waits.

Each run leaves UI artifacts: the introspection table (deploy), the deployment's markdown (its
OCID, endpoint, model, console links; from :mod:`ocimodel.tasks.deploy`) and a summary of what
the run did (``deployment-operation``); the run log has one line per state change. A run that
fails leaves a markdown artifact (``operation-failure``) saying what exists and what to do, after
compensating explicitly: a deployment this run created and that never became ACTIVE is deleted,
and the model it saved is tagged ``ocimodel-status: failed`` (or deleted, with
``delete_model_on_failure``). Compensation is plain try/except, not a Prefect transaction: the
tasks are retried, and a retried task inside a transaction rolls back on its first failed
attempt even when the retry succeeds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger

from ocimodel.artifact.uploader import work_dir
from ocimodel.deploy import (
    ACTIVE,
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    DEPLOY_TAG,
    DeploymentNotFoundError,
    DeploySpec,
)
from ocimodel.errors import OcimodelError
from ocimodel.files import is_oci_uri, local_path
from ocimodel.flows._blocks import load_target
from ocimodel.flows._locks import deployment_lock, forget_lock
from ocimodel.flows._runs import (
    FAILURE_ARTIFACT_KEY,
    SUMMARY_ARTIFACT_KEY,
    Ledger,
    OperationRun,
    Wait,
    create_deployment,
    publish_summary,
    result_of,
)
from ocimodel.summary import ModelState, SummaryDetail
from ocimodel.tasks.deploy import (
    delete_deployment,
    get_deployment,
    publish_deployment,
    update_deployment,
)
from ocimodel.tasks.introspect import introspect_artifact, require_passed
from ocimodel.tasks.save import FAILED_STATUS, STATUS_TAG, save_model
from ocimodel.tasks.save import delete_model as delete_catalog_model
from ocimodel.tasks.source import stage_artifact
from ocimodel.tasks.summary import PREPARE_DETAILS, RunSummary

if TYPE_CHECKING:
    pass

__all__ = [
    "FAILED_STATUS",
    "FAILURE_ARTIFACT_KEY",
    "LOCK_TIMEOUT",
    "PREVIOUS_MODEL_TAG",
    "STATUS_TAG",
    "SUMMARY_ARTIFACT_KEY",
    "NoPreviousModelError",
    "deploy_artifact",
    "promote_model",
    "rollback_deployment",
    "served_model",
    "tear_down",
]

PREVIOUS_MODEL_TAG = "ocimodel-previous-model"
"""Freeform tag on a deployment: the model the last promote (or rollback) replaced."""
LOCK_TIMEOUT = 3600.0
"""Seconds a run waits for another run changing the same deployment, by default."""
_SWAPPED_PREFIX = "swapped-"
"""The deployment's ``ocimodel-deploy-id`` after a swap: no deploy call's identity, so deploying
the first model again makes a new deployment instead of finding one that serves another."""


class NoPreviousModelError(OcimodelError, LookupError):
    """The deployment records no model to roll back to (no promote replaced one yet)."""

    def __init__(self, deployment_id: str):
        super().__init__(
            f"Model deployment {deployment_id} has no {PREVIOUS_MODEL_TAG!r} freeform tag, so "
            "there is no model to roll back to: only a deployment that promote-model updated "
            "records the model it replaced. Promote a model onto it instead."
        )
        self.deployment_id = deployment_id

    advice = "Nothing was changed. Promote a model onto the deployment instead."
    """What to do, for the failure artifact."""


def served_model(deployment: Any) -> str | None:
    """The OCID of the model a deployment serves."""
    config = getattr(deployment, "model_deployment_configuration_details", None)
    model = getattr(config, "model_configuration_details", None)
    return getattr(model, "model_id", None)


# --- tasks of the operations (thin, over the core) ---------------------------------------------


def _swap_tags(deployment: Any, new_model_id: str, previous_model_id: str) -> dict[str, str]:
    """The deployment's tags after a swap: the replaced model recorded, its deploy identity
    retired (see :data:`_SWAPPED_PREFIX`), the others kept."""
    tags = dict(deployment.freeform_tags or {})
    tags[PREVIOUS_MODEL_TAG] = previous_model_id
    digest = hashlib.sha256(new_model_id.encode()).hexdigest()[:24]
    tags[DEPLOY_TAG] = f"{_SWAPPED_PREFIX}{digest}"
    return tags


def _deploy_spec(
    options: Mapping[str, Any] | None,
    display_name: str | None,
    freeform_tags: Mapping[str, str] | None,
) -> DeploySpec:
    """A DeploySpec from a UI's ``deployment_options`` object; the named parameters win."""
    given = dict(options or {})
    if display_name is not None:
        given["display_name"] = display_name
    if freeform_tags:
        given["freeform_tags"] = {**dict(given.get("freeform_tags") or {}), **freeform_tags}
    return DeploySpec.of(**given)


def _staging_dir(artifact_uri: str) -> str:
    """Where an artifact from ``artifact_uri`` is unpacked: one folder per source, so a re-run
    of the same source converges on the same files (and the save on the same model)."""
    digest = hashlib.sha256(artifact_uri.encode()).hexdigest()[:20]
    return os.path.join(work_dir(), "staged", digest)


# --- the flows --------------------------------------------------------------------------------


@flow(name="deploy-artifact")
def deploy_artifact(
    artifact_uri: str,
    credentials_block: str | None = None,
    settings_block: str | None = None,
    model_display_name: str | None = None,
    model_description: str | None = None,
    deployment_display_name: str | None = None,
    model_version_set: str | None = None,
    version_label: str | None = None,
    freeform_tags: dict[str, str] | None = None,
    deployment_options: dict[str, Any] | None = None,
    bucket_uri: str | None = None,
    artifact_dir: str | None = None,
    ignore_introspection: bool = False,
    delete_model_on_failure: bool = False,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> dict[str, Any]:
    """Deploys a prepared model artifact: stages it, introspects it, saves it to the model
    catalog, deploys it and waits until the endpoint is ACTIVE.

    Re-running with the same parameters finds the model and the deployment an earlier run
    made. On failure the deployment this run created is deleted and the model is tagged
    ocimodel-status: failed (or deleted). Returns {"model_id", "deployment_id", "url"}.

    Args:
        artifact_uri: The artifact folder or archive (.zip, .tar.gz): a path on the worker or
            oci://bucket@namespace/path.
        credentials_block: Name of an OCI Credentials block; unset uses the worker's
            environment (OCI_CONFIG_FILE, OCIMODEL_SERVICE_ENDPOINT...).
        settings_block: Name of an OCI Model Deployment Settings block: compartment, project,
            shape, instances and other defaults.
        model_display_name: The model's name in the catalog (default: a generated one).
        model_description: The model's description in the catalog.
        deployment_display_name: The deployment's name (default: the model's, "-deployment").
        model_version_set: A model version set to add the model to (OCID or name).
        version_label: The model's label within its version set.
        freeform_tags: Tags for the model and the deployment.
        deployment_options: More deployment settings by name, e.g.
            {"deployment_instance_count": 2, "deployment_bandwidth_mbps": 20}.
        bucket_uri: An oci:// prefix to upload the artifact through (parallel and
            resumable; needed over 2 GB).
        artifact_dir: Where to unpack an archive or a remote artifact (default: a work
            folder per source).
        ignore_introspection: Save and deploy even when introspection checks fail.
        delete_model_on_failure: Delete the saved model, rather than tag it, when the
            deployment fails.
        max_wait_time: Seconds to wait for each long operation before giving up.
        poll_interval: Longest pause in seconds between two reads of a changing deployment.
    """
    logger = get_run_logger()
    wait = Wait(max_wait_time, poll_interval)
    ledger = Ledger("deploy-artifact")
    stages = RunSummary()
    stages.mark(ModelState.NOTAPPLICABLE, *PREPARE_DETAILS, SummaryDetail.VERIFIED)
    try:
        with OperationRun(ledger, wait, delete_model_on_failure) as run:
            target = run.target = load_target(credentials_block, settings_block)
            spec = _deploy_spec(deployment_options, deployment_display_name, freeform_tags)
            local = None if is_oci_uri(artifact_uri) else local_path(artifact_uri)
            in_place = artifact_dir is None and local is not None and os.path.isdir(local)
            with stages.stage(SummaryDetail.INTROSPECTED):
                folder = stage_artifact(
                    artifact_uri,
                    artifact_dir=None if in_place else (artifact_dir or _staging_dir(artifact_uri)),
                    force_overwrite=True,
                    auth=target.auth,
                )
                report = introspect_artifact(folder, auth=target.auth)
                require_passed(report, f"from {artifact_uri}", ignore_introspection)
            with stages.stage(SummaryDetail.UPLOADED):
                model_id = save_model(
                    folder,
                    properties=target.properties,
                    auth=target.auth,
                    display_name=model_display_name,
                    description=model_description,
                    freeform_tags=freeform_tags,
                    model_version_set=model_version_set,
                    version_label=version_label,
                    bucket_uri=bucket_uri or target.property("bucket_uri"),
                    ignore_introspection=ignore_introspection,
                )
            ledger.model_id, ledger.model_saved = model_id, True
            with stages.stage(SummaryDetail.DEPLOYED):
                deployment = create_deployment(target, model_id, spec, wait, ledger)
            stages.deployment(deployment.lifecycle_state)
            logger.info(
                "Deployed %s as model %s on deployment %s: %s",
                artifact_uri,
                model_id,
                deployment.id,
                deployment.model_deployment_url,
            )
            publish_summary(f"Deployed {artifact_uri}", target, deployment, model_id, ledger)
    except Exception:
        stages.publish(f"deploy-artifact of {artifact_uri} failed; see operation-failure.")
        raise
    stages.publish(f"deploy-artifact: {artifact_uri} is live on {deployment.id}.")
    return result_of(deployment, model_id, ledger)


@flow(name="promote-model")
def promote_model(
    model_id: str,
    deployment_id: str | None = None,
    credentials_block: str | None = None,
    settings_block: str | None = None,
    deployment_display_name: str | None = None,
    deployment_options: dict[str, Any] | None = None,
    freeform_tags: dict[str, str] | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    lock_timeout: float = LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Promotes a saved model: the live deployment is updated to serve it without downtime,
    and the model it served is recorded (freeform tag ocimodel-previous-model) for
    rollback-deployment. Without a deployment_id, a new deployment serves it.

    Runs changing one deployment wait for each other. If the model fails to start, it is
    tagged ocimodel-status: failed and the failure artifact says how to restore service.
    Returns {"model_id", "deployment_id", "url", "previous_model_id"}.

    Args:
        model_id: OCID of the saved model to serve.
        deployment_id: OCID of the live deployment to update; unset creates a deployment.
        credentials_block: Name of an OCI Credentials block; unset uses the worker's
            environment.
        settings_block: Name of an OCI Model Deployment Settings block, for a new
            deployment's defaults.
        deployment_display_name: A new deployment's name.
        deployment_options: A new deployment's settings by name, e.g.
            {"deployment_instance_count": 2}.
        freeform_tags: Tags to add to the deployment.
        max_wait_time: Seconds to wait for the deployment before giving up.
        poll_interval: Longest pause in seconds between two reads of a changing deployment.
        lock_timeout: Seconds to wait for another run that is changing the same deployment.
    """
    logger = get_run_logger()
    wait = Wait(max_wait_time, poll_interval)
    ledger = Ledger("promote-model", model_id=model_id)
    with OperationRun(ledger, wait) as run:
        target = run.target = load_target(credentials_block, settings_block)
        if deployment_id is None:
            spec = _deploy_spec(deployment_options, deployment_display_name, freeform_tags)
            deployment = create_deployment(target, model_id, spec, wait, ledger)
            logger.info("Model %s is live on the new deployment %s", model_id, deployment.id)
            publish_summary(f"Deployed model {model_id}", target, deployment, model_id, ledger)
            return result_of(deployment, model_id, ledger)
        ledger.deployment_id, ledger.existing_deployment = deployment_id, True
        with deployment_lock(deployment_id, lock_timeout):
            current = get_deployment(target.auth, deployment_id)
            previous = served_model(current)
            if previous == model_id:
                ledger.active = current.lifecycle_state == ACTIVE
                ledger.notes.append("The deployment already served this model: nothing changed.")
                logger.info("Model deployment %s already serves model %s", deployment_id, model_id)
                publish_deployment(current, model_id, target.auth)
                publish_summary(f"Model {model_id} is live", target, current, model_id, ledger)
                return result_of(current, model_id, ledger)
            ledger.previous_model_id = previous
            tags = _swap_tags(current, model_id, previous)
            if freeform_tags:
                tags.update(freeform_tags)
            logger.info(
                "Promoting model %s onto deployment %s (replacing model %s)",
                model_id,
                deployment_id,
                previous,
            )
            deployment = update_deployment(
                target.auth,
                deployment_id,
                model_id=model_id,
                freeform_tags=tags,
                max_wait_time=max_wait_time,
                poll_interval=poll_interval,
            )
            ledger.active = True
        ledger.notes.append(
            f"Roll back with rollback-deployment (`deployment_id: {deployment_id}`)."
        )
        publish_summary(f"Promoted model {model_id}", target, deployment, model_id, ledger)
        return result_of(deployment, model_id, ledger)


@flow(name="rollback-deployment")
def rollback_deployment(
    deployment_id: str,
    credentials_block: str | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    lock_timeout: float = LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Rolls the deployment back to the model the last promote replaced (its freeform tag
    ocimodel-previous-model), without downtime.

    The tag then names the model rolled back from, so running it again goes forward. Fails
    with NoPreviousModelError, changing nothing, when no promote recorded a model. Returns
    {"model_id", "deployment_id", "url", "previous_model_id"}.

    Args:
        deployment_id: OCID of the deployment to roll back.
        credentials_block: Name of an OCI Credentials block; unset uses the worker's
            environment.
        max_wait_time: Seconds to wait for the deployment before giving up.
        poll_interval: Longest pause in seconds between two reads of a changing deployment.
        lock_timeout: Seconds to wait for another run that is changing the same deployment.
    """
    logger = get_run_logger()
    wait = Wait(max_wait_time, poll_interval)
    ledger = Ledger("rollback-deployment", deployment_id=deployment_id, existing_deployment=True)
    with OperationRun(ledger, wait) as run:
        target = run.target = load_target(credentials_block, None)
        with deployment_lock(deployment_id, lock_timeout):
            current = get_deployment(target.auth, deployment_id)
            back_to = (current.freeform_tags or {}).get(PREVIOUS_MODEL_TAG)
            if not back_to:
                raise NoPreviousModelError(deployment_id)
            serving = served_model(current)
            ledger.model_id, ledger.previous_model_id = back_to, serving
            logger.info(
                "Rolling deployment %s back from model %s to model %s",
                deployment_id,
                serving,
                back_to,
            )
            deployment = update_deployment(
                target.auth,
                deployment_id,
                model_id=back_to,
                freeform_tags=_swap_tags(current, back_to, serving),
                max_wait_time=max_wait_time,
                poll_interval=poll_interval,
            )
            ledger.active = True
        publish_summary(f"Rolled back to model {back_to}", target, deployment, back_to, ledger)
        return result_of(deployment, back_to, ledger)


@flow(name="tear-down")
def tear_down(
    deployment_id: str,
    delete_model: bool = False,
    credentials_block: str | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    lock_timeout: float = LOCK_TIMEOUT,
) -> dict[str, Any]:
    """Deletes the model deployment (its endpoint stops answering) and, optionally, the model
    it served. A deployment already deleted is left as is, so re-running is safe. Returns
    {"deployment_id", "model_id", "model_deleted"}.

    Args:
        deployment_id: OCID of the deployment to delete.
        delete_model: Also delete the model the deployment served.
        credentials_block: Name of an OCI Credentials block; unset uses the worker's
            environment.
        max_wait_time: Seconds to wait for the deletion before giving up.
        poll_interval: Longest pause in seconds between two reads of a changing deployment.
        lock_timeout: Seconds to wait for another run that is changing the same deployment.
    """
    logger = get_run_logger()
    wait = Wait(max_wait_time, poll_interval)
    ledger = Ledger("tear-down", deployment_id=deployment_id, existing_deployment=True)
    ledger.active = True  # nothing to compensate: a delete only converges
    with OperationRun(ledger, wait) as run:
        target = run.target = load_target(credentials_block, None)
        with deployment_lock(deployment_id, lock_timeout):
            try:
                current = get_deployment(target.auth, deployment_id)
            except DeploymentNotFoundError:
                current = None
            ledger.model_id = served_model(current)
            delete_deployment(target.auth, deployment_id, **wait.kwargs())
        ledger.notes.append(f"Deleted model deployment `{deployment_id}`.")
        removed = False
        if delete_model and ledger.model_id:
            delete_catalog_model(target.auth, ledger.model_id)
            removed = True
            ledger.notes.append(f"Deleted model `{ledger.model_id}`.")
        forget_lock(deployment_id)
        logger.info("Tore down deployment %s", deployment_id)
        publish_summary(f"Tore down {deployment_id}", target, None, ledger.model_id, ledger)
        return {
            "deployment_id": deployment_id,
            "model_id": ledger.model_id,
            "model_deleted": removed,
        }
