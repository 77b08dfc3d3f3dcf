"""Prefect tasks of the deploy stage: deploy a saved model, wait for it to be ACTIVE, delete it.

Each wraps one core function of :mod:`ocimodel.deploy` and takes its parameters (the progress
reporter excepted: inside a task, a wait shows a Prefect progress artifact). ``deploy_model`` is
retried on transient errors and a retry never creates a second deployment: the core finds the
deployment an earlier attempt created by its ``ocimodel-deploy-id`` tag and goes on waiting for
it. A wait that reached its deadline is not retried (that would double the deadline); running
the task again resumes it. The core's log lines (each state change and each work-request log
line, once) also reach the Prefect run's log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.logging.handlers import APILogHandler

from ocimodel import deploy as core
from ocimodel.deploy import (
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    DeployedModel,
    DeploySpec,
)
from ocimodel.oci import deployment as md
from ocimodel.tasks._links import deployment_console_link, model_console_link, region_of
from ocimodel.tasks._progress import progress_artifacts
from ocimodel.tasks._retry import WAITING_TASK

if TYPE_CHECKING:
    import oci.data_science.models as dsm

    from ocimodel.oci.auth import AuthLike

DEPLOYMENT_ARTIFACT_KEY = "model-deployment"
WAIT_PROGRESS_KEY = "deployment-wait"
CORE_LOGGER = core.__name__
"""The std logger the deploy stage reports on (``ocimodel.deploy``)."""


class _RunLogBridge(logging.Handler):
    """Passes the records of a core logger on to the Prefect run logger of the thread that
    logged them (each running task registers its own), once per logger however many tasks run.

    Records the logger would not have made on its own (INFO when the user left it at WARNING)
    reach only the run's log; the others go on to the parent loggers' handlers as before."""

    def __init__(self, logger: logging.Logger):
        super().__init__(logging.INFO)
        self.logger = logger
        self.run_loggers: dict[int, Any] = {}
        self.own_level = logger.level
        self.own_propagate = logger.propagate
        self.threshold = logger.getEffectiveLevel()

    def install(self) -> None:
        if self.threshold > logging.INFO:
            self.logger.setLevel(logging.INFO)
            self.logger.propagate = False
        self.logger.addHandler(self)

    def uninstall(self) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.own_level)
        self.logger.propagate = self.own_propagate

    def emit(self, record: logging.LogRecord) -> None:
        run_logger = self.run_loggers.get(record.thread)
        try:
            if run_logger is not None:
                run_logger.log(record.levelno, "%s", record.getMessage())
            if not self.logger.propagate and record.levelno >= self.threshold:
                parent = self.logger.parent
                if parent is not None:
                    parent.handle(record)
        except Exception:  # a log line must never fail the operation it reports on
            self.handleError(record)


_bridges: dict[str, _RunLogBridge] = {}
_bridges_lock = threading.Lock()


@contextlib.contextmanager
def core_logs_in_run_log(name: str = CORE_LOGGER) -> Iterator[None]:
    """Within the block, INFO and above of the std logger ``name`` from this thread also go
    to the run's log, unless Prefect already sends that logger there
    (``PREFECT_LOGGING_EXTRA_LOGGERS``)."""
    logger = logging.getLogger(name)
    if any(isinstance(h, APILogHandler) for h in logger.handlers):
        yield
        return
    thread = threading.get_ident()
    with _bridges_lock:
        bridge = _bridges.get(name)
        if bridge is None:
            bridge = _bridges[name] = _RunLogBridge(logger)
            bridge.install()
        bridge.run_loggers[thread] = get_run_logger()
    try:
        yield
    finally:
        with _bridges_lock:
            bridge.run_loggers.pop(thread, None)
            if not bridge.run_loggers:
                bridge.uninstall()
                del _bridges[name]


def _model_of(deployment: Any) -> str | None:
    """The OCID of the model a deployment serves."""
    config = getattr(deployment, "model_deployment_configuration_details", None)
    model = getattr(config, "model_configuration_details", None)
    return getattr(model, "model_id", None)


def publish_deployment(deployment: Any, model_id: str | None = None, auth: AuthLike = None) -> None:
    """The deployment's markdown artifact: OCID, state, endpoint, model, console links (a new
    version of the same key each time, so the UI shows the latest state)."""
    model_id = model_id or _model_of(deployment)
    name = getattr(deployment, "display_name", None)
    url = getattr(deployment, "model_deployment_url", None)
    region = region_of(deployment.id, auth)
    lines = [
        f"**Model deployment** `{deployment.id}` {f'({name}) ' if name else ''}is "
        f"**{deployment.lifecycle_state}**",
        "",
        f"- Endpoint: `{url}/predict`" if url else "- Endpoint: not known yet",
        f"- Model: `{model_id}`" if model_id else "- Model: unknown",
        "",
        f"[Open the deployment in the OCI console]"
        f"({deployment_console_link(deployment.id, region)})"
        + (f" · [Open the model]({model_console_link(model_id, region)})" if model_id else ""),
    ]
    create_markdown_artifact(
        key=DEPLOYMENT_ARTIFACT_KEY,
        markdown="\n".join(lines),
        description="The model deployment on OCI Data Science",
    )


@task(name="deploy-model", **WAITING_TASK)
def deploy_model(
    model_id: str,
    spec: DeploySpec | Mapping[str, Any] | None = None,
    *,
    auth: AuthLike = None,
    properties: Any = None,
    wait_for_completion: bool = True,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    replace_failed: bool = False,
) -> DeployedModel:
    """Deploys a saved model (finding the deployment an earlier attempt made) and publishes its
    OCID, endpoint and console link as a markdown artifact. ``spec`` is a DeploySpec or a dict
    of its options (deployment_instance_shape, display_name...), as a UI run passes it."""
    if spec is not None and not isinstance(spec, DeploySpec):
        spec = DeploySpec.of(**dict(spec))
    logger = get_run_logger()
    with progress_artifacts(WAIT_PROGRESS_KEY), core_logs_in_run_log():
        deployed = core.deploy_model(
            model_id,
            spec,
            auth=auth,
            properties=properties,
            wait_for_completion=wait_for_completion,
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
            replace_failed=replace_failed,
        )
    publish_deployment(deployed.deployment, model_id, auth)
    logger.info(
        "%s model deployment %s of model %s: %s, endpoint %s",
        "Created" if deployed.created else "Found",
        deployed.id,
        model_id,
        deployed.state,
        deployed.url,
    )
    return deployed


@task(name="wait-for-active", **WAITING_TASK)
def wait_for_active(
    auth: AuthLike,
    deployment_id: str,
    *,
    work_request_id: str | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> dsm.ModelDeployment:
    """Waits until the deployment is ACTIVE, with a progress artifact and each state change in
    the run's log; raises DeploymentFailedError (with the service's errors and log lines) or
    DeploymentTimeoutError (the service goes on; run it again to resume)."""
    with progress_artifacts(WAIT_PROGRESS_KEY), core_logs_in_run_log():
        deployment = core.wait_for_active(
            auth,
            deployment_id,
            work_request_id=work_request_id,
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
        )
    publish_deployment(deployment, auth=auth)
    get_run_logger().info(
        "Model deployment %s is ACTIVE at %s", deployment_id, deployment.model_deployment_url
    )
    return deployment


@task(name="delete-deployment", **WAITING_TASK)
def delete_deployment(
    auth: AuthLike,
    deployment_id: str,
    wait_for_completion: bool = True,
    *,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> None:
    """Deletes the deployment (one already gone is left as is), waiting until it is DELETED
    when ``wait_for_completion``; safe to re-run."""
    with progress_artifacts(WAIT_PROGRESS_KEY), core_logs_in_run_log():
        core.delete_deployment(
            auth,
            deployment_id,
            wait_for_completion,
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
        )
    what = "Deleted" if wait_for_completion else "Asked to delete"
    get_run_logger().info("%s model deployment %s", what, deployment_id)


@task(name="get-deployment", **WAITING_TASK)
def get_deployment(auth: AuthLike, deployment_id: str) -> dsm.ModelDeployment:
    """The deployment as the service has it now (state, model, tags)."""
    return md.get_model_deployment(auth, deployment_id)


@task(name="update-deployment", **WAITING_TASK)
def update_deployment(
    auth: AuthLike,
    deployment_id: str,
    *,
    wait: bool = True,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    **changes: Any,
) -> dsm.ModelDeployment:
    """Changes a deployment (``changes`` as :func:`ocimodel.deploy.update_deployment` takes
    them, e.g. ``model_id`` to serve another model without downtime) and waits until the
    update ended; re-running it is safe: an update to the settings it has sends nothing."""
    with progress_artifacts(WAIT_PROGRESS_KEY), core_logs_in_run_log():
        deployment = core.update_deployment(
            auth,
            deployment_id,
            wait=wait,
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
            **changes,
        )
    publish_deployment(deployment, changes.get("model_id"), auth)
    get_run_logger().info(
        "Updated model deployment %s (%s): %s",
        deployment_id,
        ", ".join(sorted(changes)) or "nothing",
        deployment.lifecycle_state,
    )
    return deployment
