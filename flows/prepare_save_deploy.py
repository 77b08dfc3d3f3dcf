"""The prepare-save-deploy flow: a trained model in, a live OCI Data Science endpoint out.

It takes one of three sources:

- ``estimator``: a trained model in memory (a programmatic run);
- ``model_uri``: a serialized model file (local path or ``oci://``) that ``model_save_serializer``
  reads (a pickle, a joblib file...);
- ``artifact_uri``: an artifact already prepared (a folder, .zip or .tar(.gz), local or
  ``oci://``); prepare is skipped, introspection still runs before the save.

Then it runs every stage: the ``prepare_model`` subflow (or staging and introspection), the
``save_model`` task, the ``deploy_model`` task, the ``wait_for_active`` task and, given
``predict_data``, the ``predict`` task on that sample. Its parameters carry the names of the
reference's ``GenericModel.prepare_save_deploy`` (``model_display_name``,
``deployment_instance_shape``...) and the defaults of the core specs (a test keeps them in
step); the estimator and the data samples are stored in Prefect's database as summaries only.

Every stage converges on a re-run: the save finds its model by the ``ocimodel-save-id`` tag,
the deploy its deployment by the ``ocimodel-deploy-id`` tag. So when a run fails, it leaves a
``deployment-failure`` markdown artifact that says what exists (the model, the deployment and
its state, with console links) and what to do, and re-raises; running the flow again with the
same parameters resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from ocimodel.deploy import (
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    DeploymentError,
    DeploymentFailedError,
    DeploymentWaitError,
    DeploySpec,
)
from ocimodel.errors import ArtifactInputError
from ocimodel.flows._params import summarized_flow
from ocimodel.flows.prepare_model import DATA_PARAMS as PREPARE_DATA_PARAMS
from ocimodel.flows.prepare_model import prepare_model
from ocimodel.layout import (
    CONDA_DEFAULT_BUCKET,
    CONDA_DEFAULT_NAMESPACE,
    DEFAULT_MODEL_INPUT_SERIALIZER,
    DEFAULT_MODEL_SAVE_SERIALIZER,
)
from ocimodel.oci import deployment as md
from ocimodel.schema import DATA_SCHEMA_MAX_COL_NUM
from ocimodel.summary import ModelState, SummaryDetail
from ocimodel.tasks._links import deployment_console_link, model_console_link, region_of
from ocimodel.tasks.deploy import (
    deploy_model,
    wait_for_active,
)
from ocimodel.tasks.introspect import introspect_artifact, require_passed
from ocimodel.tasks.predict import predict
from ocimodel.tasks.save import save_model
from ocimodel.tasks.source import load_model_file, stage_artifact
from ocimodel.tasks.summary import PREPARE_DETAILS, RunSummary

DATA_PARAMS = (*PREPARE_DATA_PARAMS, "estimator", "predict_data")
"""Parameters stored in the flow run as a summary (type and shape), never as their value."""
SOURCE_PARAMS = ("estimator", "model_uri", "artifact_uri")
"""Exactly one of these says where the model comes from."""
SAVE_PARAMS = {
    "model_display_name": "display_name",
    "model_description": "description",
    "model_freeform_tags": "freeform_tags",
    "model_defined_tags": "defined_tags",
    "bucket_uri": "bucket_uri",
    "overwrite_existing_artifact": "overwrite_existing_artifact",
    "remove_existing_artifact": "remove_existing_artifact",
    "model_version_set": "model_version_set",
    "version_label": "version_label",
    "model_by_reference": "model_by_reference",
    "parallel_process_count": "parallel_process_count",
    "compartment_id": "compartment_id",
    "project_id": "project_id",
}
"""The flow's parameters that go to the save task, by the SaveSpec field each one sets."""
DEPLOY_PARAMS = {
    "deployment_display_name": "display_name",
    "deployment_description": "description",
    **{
        f.name: f.name
        for f in dataclasses.fields(DeploySpec)
        if f.name not in ("display_name", "description")
    },
}
"""The flow's parameters that go to the deploy task, by the DeploySpec field each one sets."""
WAIT_PARAMS = ("wait_for_completion", "max_wait_time", "poll_interval", "replace_failed")
"""The flow's parameters that go to deploy_model itself (and the wait to the save as well)."""
FAILURE_ARTIFACT_KEY = "deployment-failure"


@summarized_flow(name="prepare-save-deploy", data_params=DATA_PARAMS)
def prepare_save_deploy(
    estimator: Any = None,
    model_uri: str | None = None,
    artifact_uri: str | None = None,
    artifact_dir: str | None = None,
    inference_conda_env: str | None = None,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    model_file_name: str | None = None,
    model_save_serializer: str = DEFAULT_MODEL_SAVE_SERIALIZER,
    model_input_serializer: str = DEFAULT_MODEL_INPUT_SERIALIZER,
    force_overwrite: bool = False,
    namespace: str = CONDA_DEFAULT_NAMESPACE,
    bucketname: str = CONDA_DEFAULT_BUCKET,
    use_case_type: str | None = None,
    X_sample: Any = None,
    y_sample: Any = None,
    training_script_path: str | None = None,
    training_id: str | None = None,
    ignore_pending_changes: bool = True,
    max_col_num: int = DATA_SCHEMA_MAX_COL_NUM,
    ignore_conda_error: bool = False,
    score_py_uri: str | None = None,
    ignore_introspection: bool = False,
    check_remote: bool = True,
    verify_data: Any = None,
    model_display_name: str | None = None,
    model_description: str | None = None,
    model_freeform_tags: dict[str, str] | None = None,
    model_defined_tags: dict[str, dict[str, Any]] | None = None,
    bucket_uri: str | None = None,
    overwrite_existing_artifact: bool = True,
    remove_existing_artifact: bool = True,
    model_version_set: str | None = None,
    version_label: str | None = None,
    model_by_reference: bool = False,
    parallel_process_count: int = 9,
    compartment_id: str | None = None,
    project_id: str | None = None,
    wait_for_completion: bool = True,
    deployment_display_name: str | None = None,
    deployment_description: str | None = None,
    deployment_instance_shape: str | None = None,
    deployment_ocpus: float | None = None,
    deployment_memory_in_gbs: float | None = None,
    deployment_instance_count: int | None = None,
    deployment_bandwidth_mbps: int | None = None,
    deployment_instance_subnet_id: str | None = None,
    deployment_instance_private_endpoint_id: str | None = None,
    deployment_log_group_id: str | None = None,
    deployment_access_log_id: str | None = None,
    deployment_predict_log_id: str | None = None,
    deployment_image: str | None = None,
    image_digest: str | None = None,
    cmd: list[str] | None = None,
    entrypoint: list[str] | None = None,
    server_port: int | None = None,
    health_check_port: int | None = None,
    environment_variables: dict[str, str] | None = None,
    deployment_mode: str | None = None,
    input_stream_ids: list[str] | None = None,
    output_stream_ids: list[str] | None = None,
    autoscaling_policy: dict[str, Any] | None = None,
    autoscaling_min_instances: int | None = None,
    autoscaling_max_instances: int | None = None,
    autoscaling_cpu_threshold: int | None = None,
    freeform_tags: dict[str, str] | None = None,
    defined_tags: dict[str, dict[str, Any]] | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    replace_failed: bool = False,
    predict_data: Any = None,
) -> dict[str, Any]:
    """Prepares (or stages), saves and deploys a model, waits for the endpoint and, given
    ``predict_data``, predicts on it; returns ``{"model_id", "deployment_id", "url"}`` (plus
    ``"prediction"``).

    ``freeform_tags`` and ``defined_tags`` are the deployment's (``model_*`` the model's).
    Auth comes from the environment (``OCI_CONFIG_FILE``, ``OCIMODEL_SERVICE_ENDPOINT``...),
    never from flow parameters, which the Prefect API stores.
    """
    params = locals()
    _check_sources(params)
    logger = get_run_logger()
    found: dict[str, Any] = {}
    run = RunSummary()
    if artifact_uri is not None:  # prepared elsewhere
        run.mark(ModelState.NOTAPPLICABLE, *PREPARE_DETAILS, SummaryDetail.VERIFIED)
    try:
        prepared = () if artifact_uri is not None else PREPARE_DETAILS
        verified = (SummaryDetail.VERIFIED,) if verify_data is not None else ()
        with run.stage(*prepared, SummaryDetail.INTROSPECTED, *verified):
            folder = _artifact_folder(params)
        if prepared and not verified:
            run.mark(ModelState.AVAILABLE, SummaryDetail.VERIFIED)  # no verify_data given
        with run.stage(SummaryDetail.UPLOADED):
            found["model_id"] = model_id = save_model(
                folder,
                ignore_introspection=ignore_introspection,
                max_wait_time=max_wait_time,
                poll_interval=poll_interval,
                **{field: params[name] for name, field in SAVE_PARAMS.items()},
            )
        with run.stage(SummaryDetail.DEPLOYED):
            deployed = deploy_model(
                model_id,
                {
                    field: params[name]
                    for name, field in DEPLOY_PARAMS.items()
                    if params[name] is not None
                },
                wait_for_completion=False,
                max_wait_time=max_wait_time,
                poll_interval=poll_interval,
                replace_failed=replace_failed,
            )
            found.update(deployment_id=deployed.id, state=deployed.state)
            url = deployed.url
            if wait_for_completion:
                deployment = wait_for_active(
                    None, deployed.id, max_wait_time=max_wait_time, poll_interval=poll_interval
                )
                found["state"], url = deployment.lifecycle_state, deployment.model_deployment_url
        run.deployment(found["state"])
        result = {"model_id": model_id, "deployment_id": deployed.id, "url": url}
        if predict_data is not None:
            with run.stage(SummaryDetail.PREDICTED):
                answer = predict(url, predict_data, input_serializer=model_input_serializer)
            unwrap = isinstance(answer, dict) and "prediction" in answer
            result["prediction"] = answer["prediction"] if unwrap else answer
    except Exception as exc:
        _report_failure(exc, found)
        run.publish("prepare-save-deploy failed: the stage that failed says what to change.")
        raise
    run.publish(f"prepare-save-deploy: model {model_id} live on {deployed.id}.")
    logger.info("Model %s is served by %s at %s", model_id, deployed.id, url)
    return result


def _check_sources(params: dict[str, Any]) -> None:
    """Exactly one source, and a folder to prepare in; nothing runs before these hold."""
    given = [name for name in SOURCE_PARAMS if params[name] is not None]
    if len(given) != 1:
        raise ArtifactInputError(
            f"Pass exactly one of {', '.join(SOURCE_PARAMS)} (got "
            f"{', '.join(given) or 'none'}): an estimator, a serialized model file, or a "
            "prepared artifact."
        )
    if params["artifact_uri"] is None and not params["artifact_dir"]:
        raise ArtifactInputError(
            "Pass artifact_dir, the folder to prepare the artifact in; re-runs on the same "
            "folder find the same model and deployment."
        )
    if params["predict_data"] is not None and not params["wait_for_completion"]:
        raise ArtifactInputError(
            "predict_data needs the deployment ACTIVE: pass wait_for_completion=True, or "
            "predict later with the predict task."
        )


def _artifact_folder(params: dict[str, Any]) -> str:
    """The prepared artifact folder: the prepare subflow's, or the staged and introspected one."""
    if params["artifact_uri"] is not None:
        folder = stage_artifact(
            params["artifact_uri"],
            params["artifact_dir"],
            params["model_file_name"],
            force_overwrite=params["force_overwrite"],
        )
        report = introspect_artifact(folder, check_remote=params["check_remote"])
        require_passed(report, f"in {folder}", params["ignore_introspection"])
        return folder
    model = params["estimator"]
    if model is None:
        model = load_model_file(params["model_uri"], params["model_save_serializer"])
    prepare_names = [n for n in inspect.signature(prepare_model.fn).parameters if n != "model"]
    return prepare_model(model, **{name: params[name] for name in prepare_names})


def _deployment_state(deployment_id: str) -> str | None:
    """The deployment's state now, if it can be read (best effort, for the failure report)."""
    with contextlib.suppress(Exception):
        return md.get_model_deployment(None, deployment_id).lifecycle_state
    return None


def _report_failure(exc: Exception, found: dict[str, Any]) -> None:
    """The ``deployment-failure`` markdown artifact: what exists, and what to do next."""
    model_id = found.get("model_id")
    deployment_id = found.get("deployment_id")
    state = found.get("state")
    if isinstance(exc, DeploymentError) and exc.deployment_id:
        deployment_id = exc.deployment_id
        state = getattr(exc, "last_state", None) or getattr(exc, "state", None)
    if deployment_id and state is None:
        state = _deployment_state(deployment_id)
    lines = [f"**The run failed**: `{type(exc).__name__}`", "", "```", str(exc)[:4000], "```", ""]
    if isinstance(exc, DeploymentFailedError) and (exc.errors or exc.logs):
        lines += ["Work request errors and log lines:", "", "```"]
        lines += [f"{e.get('code')}: {e.get('message')}"[:4000] for e in exc.errors[:5]]
        lines += [str(line) for line in exc.logs[-20:]]
        lines += ["```", ""]
    lines.append("**What exists**")
    lines.append("")
    if model_id:
        link = model_console_link(model_id, region_of(model_id))
        lines.append(f"- Model `{model_id}` in the model catalog ([console]({link}))")
    else:
        lines.append("- No model was saved by this run.")
    if deployment_id:
        link = deployment_console_link(deployment_id, region_of(deployment_id))
        lines.append(
            f"- Model deployment `{deployment_id}`, {state or 'state unknown'} ([console]({link}))"
        )
    elif model_id:
        lines.append("- No model deployment was created.")
    lines += ["", "**What to do**", "", _advice(exc, state)]
    with contextlib.suppress(Exception):  # the report must not hide the error it reports
        create_markdown_artifact(
            key=FAILURE_ARTIFACT_KEY,
            markdown="\n".join(lines),
            description="Why prepare-save-deploy failed, what it left, and how to resume",
        )
    get_run_logger().error(
        "prepare-save-deploy failed (model %s, deployment %s %s); see the %r artifact",
        model_id or "not saved",
        deployment_id or "not created",
        state or "",
        FAILURE_ARTIFACT_KEY,
    )


def _advice(exc: Exception, state: str | None) -> str:
    """What to change before running the flow again."""
    resume = (
        "Run the flow again with the same parameters: it resumes, since the save finds its "
        "model and the deploy its deployment by their tags (nothing is created twice)."
    )
    if state == "FAILED":
        return (
            "Fix the cause shown above (for a model that fails to load: its score.py or "
            "artifact; a changed artifact is saved as a new model and deployed anew). For a "
            "passing cause (capacity, a transient error), run again with replace_failed=True: "
            "the FAILED deployment is deleted and created again. " + resume
        )
    if isinstance(exc, DeploymentWaitError):
        return (
            "The deployment is still changing: " + resume + " A larger max_wait_time waits longer."
        )
    return "Fix the cause shown above. " + resume
