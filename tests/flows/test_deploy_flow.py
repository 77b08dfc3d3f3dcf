"""The prepare-save-deploy flow and the deploy tasks under a real Prefect server and the local
OCI: an estimator, a model file or a prepared artifact in, a live endpoint out; re-runs that
converge; a failed deployment that leaves a report; and a run through injected faults."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import shutil
import uuid

import oci
import pytest
from oci.data_science import DataScienceClient
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

from ocimodel import deploy as core
from ocimodel.deploy import DeploymentFailedError, DeploymentTimeoutError, DeploySpec
from ocimodel.flows.prepare_model import prepare_model
from ocimodel.flows.prepare_save_deploy import (
    DEPLOY_PARAMS,
    FAILURE_ARTIFACT_KEY,
    SAVE_PARAMS,
    SOURCE_PARAMS,
    WAIT_PARAMS,
    prepare_save_deploy,
)
from ocimodel.local.server import fast_retry_strategy
from ocimodel.oci import auth as oci_auth
from ocimodel.pipeline import prepare_artifact
from ocimodel.predict import predict_endpoint
from ocimodel.save import SaveSpec
from ocimodel.summary import SummaryDetail
from ocimodel.tasks import deploy as deploy_tasks
from ocimodel.tasks._retry import retry_unless_waited
from ocimodel.tasks.deploy import CORE_LOGGER, DEPLOYMENT_ARTIFACT_KEY, WAIT_PROGRESS_KEY
from ocimodel.tasks.predict import predict
from ocimodel.tasks.save import MODEL_ARTIFACT_KEY
from ocimodel.tasks.summary import SUMMARY_STATUS_KEY

SLUG = "generalml_p311_cpu_x86_64_v1"
FAST = {"poll_interval": 0.5, "max_wait_time": 120}
LIVE = ("CREATING", "ACTIVE", "UPDATING", "INACTIVE", "NEEDS_ATTENTION", "FAILED")


def _ds(local_oci) -> DataScienceClient:
    return local_oci.client(DataScienceClient)


def _models(local_oci, compartment: str) -> list:
    return [
        m
        for m in _ds(local_oci).list_models(compartment_id=compartment).data
        if m.lifecycle_state == "ACTIVE"
    ]


def _deployments(local_oci, compartment: str) -> list:
    found = _ds(local_oci).list_model_deployments(compartment_id=compartment).data
    return [d for d in found if d.lifecycle_state in LIVE]


def _run_logs(flow_run_id) -> list[str]:
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def _stored_parameters(flow_run_id) -> dict:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).parameters


@pytest.fixture
def prepared(iris, local_env, tmp_path_factory) -> str:
    """The iris pipeline prepared (no save) in a folder of its own, for artifact_uri runs."""
    estimator, X, _ = iris
    folder = tmp_path_factory.mktemp("prepared") / "iris"
    prepare_artifact(estimator, str(folder), inference_conda_env=SLUG, X_sample=X.head(20))
    return str(folder)


# --- the parameters ------------------------------------------------------------------------


def test_the_flow_takes_the_prepare_flow_parameters_and_the_save_and_deploy_ones():
    params = inspect.signature(prepare_save_deploy.fn).parameters
    prepare = inspect.signature(prepare_model.fn).parameters
    expected = set(prepare) - {"model"} | set(SOURCE_PARAMS) | set(SAVE_PARAMS) | set(DEPLOY_PARAMS)
    assert set(params) == expected | set(WAIT_PARAMS) | {"predict_data"}
    for name, param in prepare.items():
        if name not in ("model", "artifact_dir"):  # required there, one source of several here
            assert params[name].default == param.default, name
    save_fields = {f.name: f.default for f in dataclasses.fields(SaveSpec)}
    for name, field in SAVE_PARAMS.items():
        assert params[name].default == save_fields[field], name
    assert set(DEPLOY_PARAMS.values()) == {f.name for f in dataclasses.fields(DeploySpec)}
    deploy_fields = {f.name: f.default for f in dataclasses.fields(DeploySpec)}
    for name, field in DEPLOY_PARAMS.items():
        assert params[name].default == deploy_fields[field], name
    core_deploy = inspect.signature(core.deploy_model).parameters
    for name in WAIT_PARAMS:
        assert params[name].default == core_deploy[name].default, name
    for name in ("max_wait_time", "poll_interval"):
        assert params[name].default == save_fields[name], name


def test_the_flow_form_is_json_for_the_prefect_ui():
    schema = prepare_save_deploy.parameters.model_dump()
    assert not schema.get("required")
    properties = schema["properties"]
    assert properties["deployment_instance_shape"]["default"] is None
    assert properties["poll_interval"]["default"] == core.DEFAULT_POLL_INTERVAL
    json.dumps(schema)


def test_each_task_takes_its_core_function_parameters():
    pairs = [
        (deploy_tasks.deploy_model, core.deploy_model),
        (deploy_tasks.wait_for_active, core.wait_for_active),
        (deploy_tasks.delete_deployment, core.delete_deployment),
        (predict, predict_endpoint),
    ]
    for task_, function in pairs:
        task_params = inspect.signature(task_.fn).parameters
        core_params = inspect.signature(function).parameters
        assert list(task_params) == [n for n in core_params if n != "progress"], task_.name
        for name, param in task_params.items():
            assert param.default == core_params[name].default, (task_.name, name)
            assert param.kind == core_params[name].kind, (task_.name, name)


def test_remote_failures_are_retried_but_an_ended_wait_is_not():
    from prefect.states import Failed

    late = DeploymentTimeoutError(
        "not ACTIVE in time",
        waited=1.0,
        max_wait_time=1.0,
        deployment_id="ocid1.datasciencemodeldeployment.oc1.local.x",
        last_state="CREATING",
    )
    busy = oci.exceptions.ServiceError(503, "ServiceUnavailable", {}, "try again")
    assert not retry_unless_waited(None, None, Failed(data=late))
    assert retry_unless_waited(None, None, Failed(data=busy))
    for task_ in (deploy_tasks.deploy_model, deploy_tasks.wait_for_active):
        assert task_.retries >= 1 and task_.retry_condition_fn is retry_unless_waited


def test_a_flow_needs_exactly_one_source(tmp_path, iris):
    estimator, _, _ = iris
    with pytest.raises(ValueError, match="exactly one of estimator, model_uri, artifact_uri"):
        prepare_save_deploy(estimator=estimator, model_uri="model.pkl", artifact_dir=str(tmp_path))
    with pytest.raises(ValueError, match="artifact_dir"):
        prepare_save_deploy(estimator=estimator)


# --- runs ----------------------------------------------------------------------------------


def test_an_estimator_goes_live_and_a_rerun_finds_the_same_model_and_deployment(
    iris, catalog_env, local_env, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # out of this repository: a commit meanwhile is new provenance
    estimator, X, y = iris
    compartment, _ = catalog_env
    sample = X.sample(5, random_state=1)
    kwargs = dict(
        estimator=estimator,
        artifact_dir=str(tmp_path / "art"),
        inference_conda_env=SLUG,
        X_sample=X.head(20),
        y_sample=y.head(20),
        model_display_name="iris",
        deployment_display_name="iris-live",
        predict_data=sample,
        **FAST,
    )
    state = prepare_save_deploy(**kwargs, return_state=True)
    out = state.result()
    assert out["prediction"] == estimator.predict(sample).tolist()
    deployment = _ds(local_env).get_model_deployment(out["deployment_id"]).data
    assert deployment.lifecycle_state == "ACTIVE"
    assert out["url"] == deployment.model_deployment_url

    markdown = Artifact.get(DEPLOYMENT_ARTIFACT_KEY)
    assert out["deployment_id"] in markdown.data and "ACTIVE" in markdown.data
    assert out["model_id"] in markdown.data and f"{out['url']}/predict" in markdown.data
    assert "cloud.oracle.com/data-science/model-deployments/" in markdown.data
    assert out["model_id"] in Artifact.get(MODEL_ARTIFACT_KEY).data
    progress = Artifact.get(WAIT_PROGRESS_KEY)
    assert progress.type == "progress" and progress.data == 100.0
    table = {r["Details"]: r["Status"] for r in json.loads(Artifact.get(SUMMARY_STATUS_KEY).data)}
    assert table.pop(SummaryDetail.VERIFIED) == "Available"  # no verify_data given
    assert set(table.values()) == {"Done"}, table  # every other stage, predict too

    flow_run_id = state.state_details.flow_run_id
    logs = _run_logs(flow_run_id)
    became_active = [m for m in logs if m == f"Model deployment {out['deployment_id']} is ACTIVE."]
    assert len(became_active) == 1, logs
    core_logger = logging.getLogger(CORE_LOGGER)  # left as it was found
    assert (core_logger.level, core_logger.propagate, core_logger.handlers) == (0, True, [])
    stored = _stored_parameters(flow_run_id)
    assert stored["estimator"] == "<Pipeline>" and stored["predict_data"] == "<DataFrame 5x4>"

    again = prepare_save_deploy(**kwargs)
    assert {k: again[k] for k in out} == out
    assert [m.id for m in _models(local_env, compartment)] == [out["model_id"]]
    assert [d.id for d in _deployments(local_env, compartment)] == [out["deployment_id"]]


def test_a_prepared_artifact_goes_live_from_json_parameters(
    prepared, catalog_env, local_env, tmp_path, client, namespace, bucket
):
    compartment, _ = catalog_env
    archive = shutil.make_archive(str(tmp_path / "iris"), "zip", prepared)
    with open(archive, "rb") as fh:
        client.put_object(namespace, bucket, "artifacts/iris.zip", fh)
    params = {
        "artifact_uri": f"oci://{bucket}@{namespace}/artifacts/iris.zip",
        "artifact_dir": str(tmp_path / "staged"),
        "model_display_name": "iris-from-zip",
        "deployment_bandwidth_mbps": 20,
        "freeform_tags": {"team": "ml"},
        **FAST,
    }
    json.dumps(params)
    out = prepare_save_deploy(**params)
    deployment = _ds(local_env).get_model_deployment(out["deployment_id"]).data
    assert deployment.lifecycle_state == "ACTIVE"
    assert deployment.freeform_tags["team"] == "ml"
    answer = predict_endpoint(out["url"], [[5.1, 3.5, 1.4, 0.2]])
    assert answer["prediction"] == [0]

    again = prepare_save_deploy(**params)  # staged again: unchanged files keep their identity
    assert again == out
    assert len(_models(local_env, compartment)) == 1
    assert len(_deployments(local_env, compartment)) == 1


def test_a_model_file_goes_live(iris, catalog_env, local_env, tmp_path):
    import joblib

    estimator, X, _ = iris
    path = tmp_path / "iris.joblib"
    joblib.dump(estimator, path)
    sample = X.head(3)
    out = prepare_save_deploy(
        model_uri=str(path),
        model_save_serializer="joblib",
        artifact_dir=str(tmp_path / "art"),
        inference_conda_env=SLUG,
        X_sample=X.head(20),
        predict_data=sample,
        **FAST,
    )
    assert out["prediction"] == estimator.predict(sample).tolist()
    assert (tmp_path / "art" / "model.joblib").is_file()


def test_a_failed_deployment_fails_the_flow_with_a_report_and_a_rerun_replaces_it(
    prepared, catalog_env, local_faults, local_env, tmp_path
):
    compartment, _ = catalog_env
    local_faults.add_faults({"deployment_failure": "capacity exhausted (injected)", "count": 1})
    params = {"artifact_uri": prepared, "model_display_name": "iris-failing", **FAST}
    with pytest.raises(DeploymentFailedError, match="capacity exhausted") as failed:
        prepare_save_deploy(**params)
    [model] = _models(local_env, compartment)
    report = Artifact.get(FAILURE_ARTIFACT_KEY).data
    assert model.id in report and failed.value.deployment_id in report
    assert "FAILED" in report and "replace_failed=True" in report
    assert "capacity exhausted" in report
    assert f"model-deployments/{failed.value.deployment_id}" in report

    out = prepare_save_deploy(**params, replace_failed=True)
    assert out["model_id"] == model.id and out["deployment_id"] != failed.value.deployment_id
    assert [d.id for d in _deployments(local_env, compartment)] == [out["deployment_id"]]


def test_the_flow_goes_through_injected_faults_and_makes_one_of_each(
    prepared, catalog_env, local_faults, local_env, tmp_path
):
    compartment, _ = catalog_env
    oci_auth.set_auth(
        "api_key",
        oci_config_location=None,
        client_kwargs={
            "retry_strategy": fast_retry_strategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        },
    )
    services = (r"^/20190101/", r"^/n/")  # every Data Science and Object Storage operation
    creates = ("create_model", "create_model_deployment")
    local_faults.set_faults(
        # Each create served but its answer lost, then refused once: the retries must find it.
        *({"operation": op, "drop": True, "count": 1} for op in creates),
        *({"operation": op, "status": 503, "count": 1} for op in creates),
        *({"path": path, "status": 503, "rate": 0.1} for path in services),
        *({"path": path, "latency_ms": 20} for path in services),
    )
    try:
        out = prepare_save_deploy(
            artifact_uri=prepared,
            artifact_dir=str(tmp_path / "art"),
            model_display_name=f"iris-{uuid.uuid4().hex[:6]}",
            predict_data=[[6.3, 3.3, 6.0, 2.5]],
            **FAST,
        )
        rules = local_faults.faults()
    finally:
        local_faults.clear_faults()
        oci_auth.reset_auth()
    assert out["prediction"] == [2]
    assert all(rule["applied"] == 1 for rule in rules if "count" in rule), rules
    assert [m.id for m in _models(local_env, compartment)] == [out["model_id"]]
    assert [d.id for d in _deployments(local_env, compartment)] == [out["deployment_id"]]
