"""What every operation flow does around its work: a ledger of what the run created or
changed, explicit compensation when it fails, and the UI artifacts that say what happened.

A flow body runs inside :class:`OperationRun`. Should it raise, the run compensates with plain
try/except (not a Prefect transaction: the tasks are retried, and a retried task inside a
transaction rolls back on its first failed attempt even when the retry succeeds): a deployment
the run created that never became ACTIVE is deleted; a model the run saved is tagged
``ocimodel-status: failed``, or deleted with ``delete_model_on_failure``; a model that failed to
start on a deployment is tagged too. Then the ``operation-failure`` markdown artifact says what
exists now and what to do, and the error goes on up. A run that succeeds publishes the
``deployment-operation`` summary: model, deployment, endpoint, console links.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from ocimodel.deploy import (
    ACTIVE,
    DeploymentFailedError,
    DeploymentNotFoundError,
    DeploymentStateError,
    DeploymentTimeoutError,
    DeploySpec,
)
from ocimodel.errors import IntrospectionNotPassed
from ocimodel.flows._blocks import Target
from ocimodel.flows._locks import deployment_lock_name
from ocimodel.tasks._links import deployment_console_link, model_console_link, region_of
from ocimodel.tasks.deploy import (
    delete_deployment,
    deploy_model,
    wait_for_active,
)
from ocimodel.tasks.save import FAILED_STATUS, STATUS_TAG, delete_model, mark_model_failed

if TYPE_CHECKING:
    import oci.data_science.models as dsm


SUMMARY_ARTIFACT_KEY = "deployment-operation"
FAILURE_ARTIFACT_KEY = "operation-failure"


# --- what a run did, for its summary and its compensation -------------------------------------


@dataclass
class Ledger:
    """What a run has created or changed so far."""

    operation: str
    model_id: str | None = None
    model_saved: bool = False
    deployment_id: str | None = None
    deployment_created: bool = False
    existing_deployment: bool = False
    active: bool = False
    previous_model_id: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Wait:
    """The deadline and poll interval of every wait of a run."""

    max_wait_time: float
    poll_interval: float

    def kwargs(self) -> dict[str, float]:
        return {"max_wait_time": self.max_wait_time, "poll_interval": self.poll_interval}


def create_deployment(
    target: Target, model_id: str, spec: DeploySpec, wait: Wait, ledger: Ledger
) -> dsm.ModelDeployment:
    """Deploys the model as a new deployment (or the one an earlier attempt made) and waits
    for it to be ACTIVE, recording its OCID in the ledger as soon as it is known."""
    deployed = deploy_model(
        model_id,
        spec,
        auth=target.auth,
        properties=target.properties,
        wait_for_completion=False,
        **wait.kwargs(),
    )
    ledger.deployment_id, ledger.deployment_created = deployed.id, deployed.created
    if deployed.state == ACTIVE:
        deployment = deployed.deployment
    else:
        deployment = wait_for_active(target.auth, deployed.id, **wait.kwargs())
    ledger.active = True
    return deployment


# --- UI artifacts -----------------------------------------------------------------------------


def publish_summary(
    title: str, target: Target, deployment: Any, model_id: str | None, ledger: Ledger
) -> None:
    """The run's summary artifact: model, deployment, endpoint, console links."""
    lines = [f"### {title}", "", "| | |", "|---|---|"]
    if model_id:
        link = model_console_link(model_id, region_of(model_id, target.auth))
        lines.append(f"| Model | `{model_id}` ([console]({link})) |")
    if deployment is not None:
        link = deployment_console_link(deployment.id, region_of(deployment.id, target.auth))
        lines.append(f"| Model deployment | `{deployment.id}` ([console]({link})) |")
        lines.append(f"| State | {deployment.lifecycle_state} |")
        url = deployment.model_deployment_url
        lines.append(f"| Endpoint | `{url}/predict` |" if url else "| Endpoint | not known |")
    if ledger.previous_model_id:
        link = model_console_link(
            ledger.previous_model_id, region_of(ledger.previous_model_id, target.auth)
        )
        lines.append(f"| Replaced model | `{ledger.previous_model_id}` ([console]({link})) |")
    lines += ["", *ledger.notes]
    create_markdown_artifact(
        key=SUMMARY_ARTIFACT_KEY,
        markdown="\n".join(lines).rstrip() + "\n",
        description=f"{ledger.operation}: what the run did",
    )


def result_of(deployment: Any, model_id: str | None, ledger: Ledger) -> dict[str, Any]:
    """The JSON result of a run."""
    return {
        "model_id": model_id,
        "deployment_id": deployment.id if deployment is not None else ledger.deployment_id,
        "url": getattr(deployment, "model_deployment_url", None),
        "previous_model_id": ledger.previous_model_id,
    }


def _advice(exc: BaseException, ledger: Ledger) -> list[str]:
    """What to do next, for the failure artifact (an error may carry its own ``advice``)."""
    own = getattr(exc, "advice", None)
    if isinstance(own, str):
        return [own]
    if isinstance(exc, IntrospectionNotPassed):
        return [
            "Fix the checks the `model-introspection` table marks as failed, prepare the "
            "artifact again and re-run; or pass `ignore_introspection: true`."
        ]
    if isinstance(exc, TimeoutError) and not isinstance(exc, DeploymentTimeoutError):
        return [
            "Another run held the deployment's lock for longer than `lock_timeout`: wait for "
            "it to finish (see the runs holding the global concurrency limit "
            f"`{deployment_lock_name(ledger.deployment_id or '<ocid>')}`), then run again."
        ]
    if isinstance(exc, DeploymentTimeoutError):
        return [
            "The service is still working on the deployment: run the flow again with the same "
            "parameters to keep waiting (it finds what this run started), or with a longer "
            "`max_wait_time`."
        ]
    if isinstance(exc, DeploymentFailedError) and ledger.existing_deployment:
        previous = ledger.previous_model_id
        back = (
            f"To serve model `{previous}` again, run promote-model with `model_id: {previous}` "
            "and no `deployment_id` (a new deployment), then tear-down this one."
            if previous
            else "Deploy a working model again, then tear-down this deployment."
        )
        return [
            "The model failed to start on the deployment (the error above comes from the "
            "service, e.g. a score.py traceback): fix the model and save it again. " + back
        ]
    if isinstance(exc, DeploymentFailedError):
        return [
            "The model failed to start (the error above comes from the service, e.g. a "
            "score.py traceback, or capacity): fix the cause and run the flow again."
        ]
    if isinstance(exc, (DeploymentStateError, DeploymentNotFoundError)):
        return ["Check the deployment's state in the console; the error above says what it is."]
    return ["Fix the cause named above and run the flow again with the same parameters."]


def publish_failure(exc: BaseException, ledger: Ledger, target: Target | None) -> None:
    """The failure artifact: the error, what exists now and what to do."""
    auth = target.auth if target is not None else None
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    lines = [
        f"### {ledger.operation} failed",
        "",
        f"**{type(exc).__name__}**: {message[:1000]}",
        "",
        "**What exists now**",
        "",
    ]
    if ledger.model_id:
        link = model_console_link(ledger.model_id, region_of(ledger.model_id, auth))
        lines.append(f"- Model `{ledger.model_id}` ([console]({link}))")
    if ledger.deployment_id:
        link = deployment_console_link(ledger.deployment_id, region_of(ledger.deployment_id, auth))
        lines.append(f"- Model deployment `{ledger.deployment_id}` ([console]({link}))")
    if not ledger.model_id and not ledger.deployment_id:
        lines.append("- Nothing: the run failed before it created or changed anything.")
    lines += [f"- {note}" for note in ledger.notes]
    lines += ["", "**What to do**", "", *[f"- {line}" for line in _advice(exc, ledger)]]
    try:
        create_markdown_artifact(
            key=FAILURE_ARTIFACT_KEY,
            markdown="\n".join(lines) + "\n",
            description=f"{ledger.operation} failed: what exists and what to do",
        )
    except Exception as report_error:  # the run's own error matters more
        get_run_logger().warning("Could not publish the failure artifact: %s", report_error)


def compensate(
    target: Target,
    ledger: Ledger,
    wait: Wait,
    delete_model_on_failure: bool,
    error: BaseException | None = None,
) -> None:
    """Undoes what a failed run left half done, noting each step in the ledger: a deployment it
    created that is not ACTIVE is deleted; the model it saved is tagged failed, or deleted with
    ``delete_model_on_failure`` once no deployment of this run serves it; a model it did not
    save is tagged only when it failed to start on a deployment (``error``)."""
    logger = get_run_logger()
    if ledger.active:
        return
    deployment_gone = ledger.deployment_id is None
    if ledger.deployment_id and not ledger.existing_deployment:
        try:
            delete_deployment(target.auth, ledger.deployment_id, **wait.kwargs())
            deployment_gone = True
            ledger.notes.append(
                f"Deleted model deployment `{ledger.deployment_id}`, which this run created "
                "and which never became ACTIVE."
            )
        except Exception as exc:
            logger.warning("Could not delete deployment %s: %s", ledger.deployment_id, exc)
            ledger.notes.append(
                f"Could not delete model deployment `{ledger.deployment_id}` "
                f"({type(exc).__name__}); run tear-down on it."
            )
    broke = isinstance(error, DeploymentFailedError)
    if not ledger.model_id or not (ledger.model_saved or broke):
        return
    if delete_model_on_failure and ledger.model_saved and deployment_gone:
        try:
            delete_model(target.auth, ledger.model_id)
            ledger.notes.append(f"Deleted model `{ledger.model_id}` (`delete_model_on_failure`).")
            return
        except Exception as exc:
            logger.warning("Could not delete model %s: %s", ledger.model_id, exc)
            ledger.notes.append(
                f"Could not delete model `{ledger.model_id}` ({type(exc).__name__})."
            )
    try:
        mark_model_failed(target.auth, ledger.model_id)
        ledger.notes.append(
            f"Tagged model `{ledger.model_id}` `{STATUS_TAG}: {FAILED_STATUS}`; delete it from "
            "the catalog once it is of no more use."
        )
    except Exception as exc:
        logger.warning("Could not tag model %s: %s", ledger.model_id, exc)
        ledger.notes.append(f"Could not tag model `{ledger.model_id}` ({type(exc).__name__}).")


class OperationRun:
    """Runs an operation's body; on failure compensates, publishes the failure artifact and
    re-raises."""

    def __init__(
        self,
        ledger: Ledger,
        wait: Wait,
        delete_model_on_failure: bool = False,
    ):
        self.ledger = ledger
        self.wait = wait
        self.delete_model_on_failure = delete_model_on_failure
        self.target: Target | None = None

    def __enter__(self) -> OperationRun:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        found = getattr(exc, "deployment_id", None)
        if self.ledger.deployment_id is None and isinstance(found, str):
            self.ledger.deployment_id = found  # e.g. the FAILED deployment a deploy found
        if self.target is not None:
            try:
                compensate(self.target, self.ledger, self.wait, self.delete_model_on_failure, exc)
            except Exception as cleanup:  # never hide the run's own error
                get_run_logger().warning("Compensation did not finish: %s", cleanup)
        publish_failure(exc, self.ledger, self.target)
        return False
