"""Model deployments on the local service, driven through the real DataScienceClient.

Deployments run for real: every ACTIVE deployment is backed by local model-server processes
whose pids the tests check appear and disappear with the lifecycle.
"""

from __future__ import annotations

import copy
import json
import os
import time

import oci
import oci.data_science.models as dsm
import pytest
from deployment_support import (
    BROKEN_SCORE,
    ECHO_SCORE,
    create_and_wait,
    create_model,
    deployment_details,
    server_pids,
    sklearn_artifact,
    wait_work_request,
    zip_artifact,
)
from sdk_calls import NO_RETRY
from sdk_calls import service_error as _service_error

from ocimodel.local.server import LocalOCI


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def compartment(local_oci) -> str:
    return local_oci.config["tenancy"]


@pytest.fixture(scope="module")
def project_id(ds, compartment) -> str:
    details = dsm.CreateProjectDetails(compartment_id=compartment, display_name="deployments")
    return ds.create_project(details).data.id


@pytest.fixture(scope="module")
def sklearn_model(ds, compartment, project_id, tmp_path_factory):
    zipped, model, rows = sklearn_artifact(tmp_path_factory.mktemp("sk"))
    return create_model(ds, compartment, project_id, zipped), model, rows


@pytest.fixture(scope="module")
def echo_model(ds, compartment, project_id, tmp_path_factory) -> str:
    zipped = zip_artifact(tmp_path_factory.mktemp("echo"), {"score.py": ECHO_SCORE})
    return create_model(ds, compartment, project_id, zipped)


def _composite(ds):
    return oci.data_science.DataScienceClientCompositeOperations(ds)


def _waiter():
    return {"max_interval_seconds": 0.2, "max_wait_seconds": 120}


def _delete(ds, dep_id: str) -> dsm.WorkRequest:
    done = _composite(ds).delete_model_deployment_and_wait_for_state(
        dep_id, wait_for_states=["SUCCEEDED", "FAILED"], waiter_kwargs=_waiter()
    )
    return done.data


def test_sklearn_deployment_lifecycle(local_oci, ds, compartment, project_id, sklearn_model):
    model_id, model, rows = sklearn_model
    details = deployment_details(compartment, project_id, model_id, instances=2)
    dep_id, wr = create_and_wait(ds, details)
    assert wr.status == "SUCCEEDED", [e.message for e in ds.list_work_request_errors(wr.id).data]
    assert wr.operation_type == "MODEL_DEPLOYMENT_CREATE"

    got = ds.get_model_deployment(dep_id)
    dep = got.data
    assert got.headers["etag"]
    assert dep.lifecycle_state == "ACTIVE"
    assert dep.model_deployment_url == f"{local_oci.endpoint}/{dep_id}"
    assert dep.model_deployment_system_data.current_instance_count == 2
    assert oci.util.to_dict(dep.model_deployment_configuration_details) == oci.util.to_dict(
        details.model_deployment_configuration_details
    )
    assert oci.util.to_dict(dep.category_log_details) == oci.util.to_dict(
        details.category_log_details
    )
    assert dep.freeform_tags == {"purpose": "test"}
    assert dep.created_by == local_oci.config["user"]

    pids = server_pids(local_oci, dep_id)
    assert len(set(pids)) == 2 and all(_alive(p) for p in pids)

    md = local_oci.client(oci.model_deployment.ModelDeploymentClient)
    answer = md.predict(dep_id, {"instances": rows})
    assert json.loads(answer.data) == {"prediction": model.predict(rows).tolist()}

    listed = ds.list_model_deployments(compartment, lifecycle_state="ACTIVE").data
    assert dep_id in [d.id for d in listed]
    by_name = ds.list_model_deployments(compartment, display_name="no-such-name").data
    assert dep_id not in [d.id for d in by_name]

    # A model served by a live deployment cannot be deleted; ACTIVE cannot be activated.
    assert _service_error(ds.delete_model, model_id, retry_strategy=NO_RETRY).status == 409
    err = _service_error(ds.activate_model_deployment, dep_id, retry_strategy=NO_RETRY)
    assert (err.status, err.code) == (409, "IncorrectState")

    done = _composite(ds).deactivate_model_deployment_and_wait_for_state(
        dep_id, wait_for_states=["SUCCEEDED", "FAILED"], waiter_kwargs=_waiter()
    )
    assert done.data.status == "SUCCEEDED"
    assert done.data.operation_type == "MODEL_DEPLOYMENT_DEACTIVATE"
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "INACTIVE"
    assert not any(_alive(p) for p in pids)
    assert server_pids(local_oci, dep_id) == []
    err = _service_error(md.predict, dep_id, {"instances": rows}, retry_strategy=NO_RETRY)
    assert err.status == 404 and "INACTIVE" in err.message
    err = _service_error(ds.deactivate_model_deployment, dep_id, retry_strategy=NO_RETRY)
    assert (err.status, err.code) == (409, "IncorrectState")

    done = _composite(ds).activate_model_deployment_and_wait_for_state(
        dep_id, wait_for_states=["SUCCEEDED", "FAILED"], waiter_kwargs=_waiter()
    )
    assert done.data.status == "SUCCEEDED"
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "ACTIVE"
    new_pids = server_pids(local_oci, dep_id)
    assert len(new_pids) == 2 and not set(new_pids) & set(pids)
    answer = md.predict(dep_id, {"instances": rows[:1]})
    assert json.loads(answer.data) == {"prediction": model.predict(rows[:1]).tolist()}

    wr = _delete(ds, dep_id)
    assert wr.status == "SUCCEEDED" and wr.operation_type == "MODEL_DEPLOYMENT_DELETE"
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "DELETED"
    assert not any(_alive(p) for p in new_pids)
    assert not (local_oci.data_dir / "deployments" / dep_id).exists()
    err = _service_error(ds.delete_model_deployment, dep_id, retry_strategy=NO_RETRY)
    assert (err.status, err.code) == (409, "IncorrectState")
    err = _service_error(
        ds.update_model_deployment,
        dep_id,
        dsm.UpdateModelDeploymentDetails(display_name="too late"),
        retry_strategy=NO_RETRY,
    )
    assert (err.status, err.code) == (409, "IncorrectState")
    err = _service_error(md.predict, dep_id, {"instances": rows}, retry_strategy=NO_RETRY)
    assert err.status == 404
    ds.deactivate_model(model_id)  # the model is free again once no deployment uses it
    ds.activate_model(model_id)


def test_update_metadata_scaling_and_model(
    local_oci, ds, compartment, project_id, sklearn_model, echo_model
):
    model_id, model, rows = sklearn_model
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project_id, model_id))
    assert wr.status == "SUCCEEDED"
    etag = ds.get_model_deployment(dep_id).headers["etag"]
    first_pids = server_pids(local_oci, dep_id)
    composite = _composite(ds)

    err = _service_error(
        ds.update_model_deployment,
        dep_id,
        dsm.UpdateModelDeploymentDetails(display_name="stale"),
        if_match="not-the-etag",
        retry_strategy=NO_RETRY,
    )
    assert err.status == 412
    done = composite.update_model_deployment_and_wait_for_state(
        dep_id,
        dsm.UpdateModelDeploymentDetails(display_name="renamed", freeform_tags={"v": "2"}),
        operation_kwargs={"if_match": etag},
        wait_for_states=["SUCCEEDED", "FAILED"],
        waiter_kwargs=_waiter(),
    )
    assert done.data.status == "SUCCEEDED"
    dep = ds.get_model_deployment(dep_id).data
    assert (dep.display_name, dep.freeform_tags) == ("renamed", {"v": "2"})
    assert server_pids(local_oci, dep_id) == first_pids  # metadata only: no restart

    bad_scale = {
        C: {
            "deploymentType": "SINGLE_MODEL",
            "modelConfigurationDetails": {
                "scalingPolicy": {"policyType": "FIXED_SIZE", "instanceCount": 0}
            },
        }
    }
    err = _service_error(ds.update_model_deployment, dep_id, bad_scale, retry_strategy=NO_RETRY)
    assert err.status == 400 and "instanceCount" in err.message
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "ACTIVE"

    scale_up = dsm.UpdateModelDeploymentDetails(
        model_deployment_configuration_details=dsm.UpdateSingleModelDeploymentConfigurationDetails(
            deployment_type="SINGLE_MODEL",
            model_configuration_details=dsm.UpdateModelConfigurationDetails(
                model_id=echo_model,
                scaling_policy=dsm.FixedSizeScalingPolicy(
                    policy_type="FIXED_SIZE", instance_count=2
                ),
            ),
        )
    )
    resp = ds.update_model_deployment(dep_id, scale_up)
    assert ds.get_model_deployment(dep_id).data.lifecycle_state in ("UPDATING", "ACTIVE")
    wr = wait_work_request(ds, resp.headers["opc-work-request-id"])
    assert wr.status == "SUCCEEDED" and wr.operation_type == "MODEL_DEPLOYMENT_UPDATE"
    dep = ds.get_model_deployment(dep_id).data
    assert dep.lifecycle_state == "ACTIVE"
    config = dep.model_deployment_configuration_details.model_configuration_details
    assert (config.model_id, config.scaling_policy.instance_count) == (echo_model, 2)
    assert config.instance_configuration.instance_shape_name == "VM.Standard.E4.Flex"
    pids = server_pids(local_oci, dep_id)
    assert len(pids) == 2 and not set(pids) & set(first_pids)
    assert not any(_alive(p) for p in first_pids)
    md = local_oci.client(oci.model_deployment.ModelDeploymentClient)
    assert json.loads(md.predict(dep_id, {"x": 1}).data)["echo"] == {"x": 1}

    assert _delete(ds, dep_id).status == "SUCCEEDED"
    assert not any(_alive(p) for p in pids)


def test_broken_score_fails_with_traceback(local_oci, ds, compartment, project_id, tmp_path):
    zipped = zip_artifact(tmp_path, {"score.py": BROKEN_SCORE})
    model_id = create_model(ds, compartment, project_id, zipped)
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project_id, model_id))
    assert wr.status == "FAILED"
    errors = "\n".join(e.message for e in ds.list_work_request_errors(wr.id).data)
    assert "Traceback (most recent call last)" in errors
    assert "RuntimeError: model.pkl is corrupt: cannot load the estimator" in errors
    logs = "\n".join(entry.message for entry in ds.list_work_request_logs(wr.id).data)
    assert "RuntimeError: model.pkl is corrupt" in logs
    dep = ds.get_model_deployment(dep_id).data
    assert dep.lifecycle_state == "FAILED"
    assert dep.lifecycle_details
    assert server_pids(local_oci, dep_id) == []
    err = _service_error(ds.activate_model_deployment, dep_id, retry_strategy=NO_RETRY)
    assert err.status == 409
    assert _delete(ds, dep_id).status == "SUCCEEDED"


def test_forced_deployment_failure(local_oci, ds, compartment, project_id, echo_model):
    local_oci.add_faults({"deployment_failure": "capacity exhausted (injected)", "count": 1})
    try:
        dep_id, wr = create_and_wait(ds, deployment_details(compartment, project_id, echo_model))
    finally:
        local_oci.clear_faults()
    assert wr.status == "FAILED"
    errors = [e.message for e in ds.list_work_request_errors(wr.id).data]
    assert any("capacity exhausted (injected)" in m for m in errors)
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "FAILED"
    assert server_pids(local_oci, dep_id) == []
    assert _delete(ds, dep_id).status == "SUCCEEDED"


def test_container_runtime_recorded_and_served(local_oci, ds, compartment, project_id, echo_model):
    env = dsm.OcirModelDeploymentEnvironmentConfigurationDetails(
        environment_configuration_type="OCIR_CONTAINER",
        image="iad.ocir.io/mytenancy/models/echo:1.0",
        image_digest="sha256:" + "ab" * 32,
        cmd=["--workers", "1"],
        entrypoint=["python", "-m", "server"],
        server_port=8080,
        health_check_port=8080,
        environment_variables={"MODEL_NAME": "echo"},
    )
    details = deployment_details(compartment, project_id, echo_model, environment=env)
    dep_id, wr = create_and_wait(ds, details)
    assert wr.status == "SUCCEEDED"
    dep = ds.get_model_deployment(dep_id).data
    recorded = dep.model_deployment_configuration_details.environment_configuration_details
    assert oci.util.to_dict(recorded) == oci.util.to_dict(env)
    logs = "\n".join(entry.message for entry in ds.list_work_request_logs(wr.id).data)
    assert "No container engine" in logs and env.image in logs
    md = local_oci.client(oci.model_deployment.ModelDeploymentClient)
    assert json.loads(md.predict(dep_id, {"k": "v"}).data)["echo"] == {"k": "v"}
    assert _delete(ds, dep_id).status == "SUCCEEDED"


def test_autoscaling_starts_initial_instances(local_oci, ds, compartment, project_id, echo_model):
    details = deployment_details(compartment, project_id, echo_model)
    policy = dsm.AutoScalingPolicy(
        policy_type="AUTOSCALING",
        cool_down_in_seconds=600,
        is_enabled=True,
        auto_scaling_policies=[
            dsm.ThresholdBasedAutoScalingPolicyDetails(
                auto_scaling_policy_type="THRESHOLD",
                minimum_instance_count=1,
                maximum_instance_count=3,
                initial_instance_count=2,
                rules=[
                    dsm.PredefinedMetricExpressionRule(
                        metric_expression_rule_type="PREDEFINED_EXPRESSION",
                        metric_type="CPU_UTILIZATION",
                        scale_in_configuration=dsm.PredefinedExpressionThresholdScalingConfiguration(
                            scaling_configuration_type="THRESHOLD", threshold=10
                        ),
                        scale_out_configuration=(
                            dsm.PredefinedExpressionThresholdScalingConfiguration(
                                scaling_configuration_type="THRESHOLD", threshold=80
                            )
                        ),
                    )
                ],
            )
        ],
    )
    mcd = details.model_deployment_configuration_details.model_configuration_details
    mcd.scaling_policy = policy
    dep_id, wr = create_and_wait(ds, details)
    assert wr.status == "SUCCEEDED"
    dep = ds.get_model_deployment(dep_id).data
    recorded = dep.model_deployment_configuration_details.model_configuration_details
    assert oci.util.to_dict(recorded.scaling_policy) == oci.util.to_dict(policy)
    assert dep.model_deployment_system_data.current_instance_count == 2
    assert len(server_pids(local_oci, dep_id)) == 2
    assert _delete(ds, dep_id).status == "SUCCEEDED"


def test_retry_token_makes_create_idempotent(ds, compartment, project_id, echo_model):
    details = deployment_details(
        compartment, project_id, echo_model, display_name="idempotent-create"
    )
    first = ds.create_model_deployment(details, opc_retry_token="token-deploy-1")
    again = ds.create_model_deployment(details, opc_retry_token="token-deploy-1")
    assert again.data.id == first.data.id
    assert again.headers["opc-work-request-id"] == first.headers["opc-work-request-id"]
    named = ds.list_model_deployments(compartment, display_name="idempotent-create").data
    assert [d.id for d in named] == [first.data.id]
    other = copy.deepcopy(details)
    other.description = "a different body"
    err = _service_error(
        ds.create_model_deployment, other, opc_retry_token="token-deploy-1", retry_strategy=NO_RETRY
    )
    assert err.status == 409
    assert wait_work_request(ds, first.headers["opc-work-request-id"]).status == "SUCCEEDED"
    assert _delete(ds, first.data.id).status == "SUCCEEDED"


def _body(ds, compartment: str, project_id: str, model_id: str) -> dict:
    details = deployment_details(compartment, project_id, model_id)
    return ds.base_client.sanitize_for_serialization(details)


def _set(body: dict, path: str, value) -> dict:
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is _DROP:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return body


_DROP = object()
C = "modelDeploymentConfigurationDetails"
M = f"{C}.modelConfigurationDetails"
INST = f"{M}.instanceConfiguration"
S = f"{INST}.modelDeploymentInstanceShapeConfigDetails"
E = f"{C}.environmentConfigurationDetails"

BAD_FIELDS = [
    ("compartmentId", _DROP, "MissingParameter", "compartmentId"),
    ("projectId", 42, "InvalidParameter", "projectId"),
    ("surprise", "x", "InvalidParameter", "surprise"),
    (f"{C}.deploymentType", "MODEL_GROUP", "InvalidParameter", f"{C}.deploymentType"),
    (f"{M}.modelId", _DROP, "MissingParameter", f"{M}.modelId"),
    (f"{INST}.instanceShapeName", _DROP, "MissingParameter", f"{INST}.instanceShapeName"),
    (f"{INST}.instanceShapeName", "Standard E4", "InvalidParameter", f"{INST}.instanceShapeName"),
    (S, _DROP, "MissingParameter", S),
    (f"{S}.ocpus", 0, "InvalidParameter", f"{S}.ocpus"),
    (f"{S}.memoryInGBs", 4096, "InvalidParameter", f"{S}.memoryInGBs"),
    (f"{M}.scalingPolicy.instanceCount", 0, "InvalidParameter", "instanceCount"),
    (f"{M}.scalingPolicy.policyType", "MANUAL", "InvalidParameter", "policyType"),
    (f"{M}.bandwidthMbps", 1, "InvalidParameter", f"{M}.bandwidthMbps"),
    (f"{M}.maximumBandwidthMbps", 5, "InvalidParameter", f"{M}.maximumBandwidthMbps"),
    (
        f"{E}.environmentVariables",
        {"1BAD": "x"},
        "InvalidParameter",
        f"{E}.environmentVariables.1BAD",
    ),
    (E, {"environmentConfigurationType": "OCIR_CONTAINER"}, "MissingParameter", f"{E}.image"),
    (
        E,
        {"environmentConfigurationType": "OCIR_CONTAINER", "image": "not an image"},
        "InvalidParameter",
        f"{E}.image",
    ),
    (
        E,
        {
            "environmentConfigurationType": "OCIR_CONTAINER",
            "image": "iad.ocir.io/a/b:1",
            "serverPort": 80,
        },
        "InvalidParameter",
        f"{E}.serverPort",
    ),
    (
        "categoryLogDetails.access.logGroupId",
        _DROP,
        "MissingParameter",
        "categoryLogDetails.access.logGroupId",
    ),
]


@pytest.mark.parametrize(("path", "value", "code", "field"), BAD_FIELDS)
def test_invalid_create_bodies_name_the_field(
    ds, compartment, project_id, echo_model, path, value, code, field
):
    before = len(ds.list_model_deployments(compartment).data)
    body = _set(_body(ds, compartment, project_id, echo_model), path, value)
    err = _service_error(ds.create_model_deployment, body, retry_strategy=NO_RETRY)
    assert (err.status, err.code) == (400, code)
    assert field in err.message
    assert len(ds.list_model_deployments(compartment).data) == before


def test_autoscaling_bounds_are_checked(ds, compartment, project_id, echo_model):
    body = _body(ds, compartment, project_id, echo_model)
    body[C]["modelConfigurationDetails"]["scalingPolicy"] = {
        "policyType": "AUTOSCALING",
        "autoScalingPolicies": [
            {
                "autoScalingPolicyType": "THRESHOLD",
                "minimumInstanceCount": 3,
                "maximumInstanceCount": 2,
                "rules": [],
            }
        ],
    }
    err = _service_error(ds.create_model_deployment, body, retry_strategy=NO_RETRY)
    assert err.status == 400 and "maximumInstanceCount" in err.message


def test_references_must_exist_and_be_ready(ds, compartment, project_id, echo_model):
    missing_model = _body(ds, compartment, project_id, "ocid1.datasciencemodel.oc1.local.nothere")
    err = _service_error(ds.create_model_deployment, missing_model, retry_strategy=NO_RETRY)
    assert err.status == 404 and "modelId" in err.message
    empty = ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project_id)
    ).data
    no_artifact = _body(ds, compartment, project_id, empty.id)
    err = _service_error(ds.create_model_deployment, no_artifact, retry_strategy=NO_RETRY)
    assert err.status == 400 and "create_model_artifact" in err.message
    missing_project = _body(
        ds, compartment, "ocid1.datascienceproject.oc1.local.nothere", echo_model
    )
    err = _service_error(ds.create_model_deployment, missing_project, retry_strategy=NO_RETRY)
    assert err.status == 404 and "projectId" in err.message


def test_other_tenancy_cannot_see_or_touch(local_oci, ds, compartment, project_id, echo_model):
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project_id, echo_model))
    assert wr.status == "SUCCEEDED"
    stranger = local_oci.client(oci.data_science.DataScienceClient, config=local_oci.add_user())
    for call in (
        lambda: stranger.get_model_deployment(dep_id),
        lambda: stranger.delete_model_deployment(dep_id),
        lambda: stranger.deactivate_model_deployment(dep_id),
        lambda: stranger.update_model_deployment(
            dep_id, dsm.UpdateModelDeploymentDetails(display_name="hijacked")
        ),
    ):
        with pytest.raises(oci.exceptions.ServiceError) as info:
            call()
        assert info.value.status == 404
    assert dep_id not in [d.id for d in stranger.list_model_deployments(compartment).data]
    body = _body(ds, compartment, project_id, echo_model)
    err = _service_error(stranger.create_model_deployment, body, retry_strategy=NO_RETRY)
    assert err.status == 404
    dep = ds.get_model_deployment(dep_id).data
    assert (dep.lifecycle_state, dep.display_name) == ("ACTIVE", "deployment-under-test")
    assert _delete(ds, dep_id).status == "SUCCEEDED"


@pytest.mark.slow
def test_restart_brings_active_deployments_back(tmp_path):
    data_dir = tmp_path / "service"
    svc = LocalOCI(data_dir=data_dir).start()
    try:
        ds = svc.client(oci.data_science.DataScienceClient)
        compartment = svc.config["tenancy"]
        project = ds.create_project(
            dsm.CreateProjectDetails(compartment_id=compartment, display_name="restart")
        ).data.id
        model_id = create_model(
            ds, compartment, project, zip_artifact(tmp_path / "a", {"score.py": ECHO_SCORE})
        )
        active, wr = create_and_wait(ds, deployment_details(compartment, project, model_id))
        assert wr.status == "SUCCEEDED"
        inactive, wr = create_and_wait(ds, deployment_details(compartment, project, model_id))
        done = _composite(ds).deactivate_model_deployment_and_wait_for_state(
            inactive, wait_for_states=["SUCCEEDED", "FAILED"], waiter_kwargs=_waiter()
        )
        assert done.data.status == "SUCCEEDED"
        old_pids = server_pids(svc, active)
    finally:
        svc.stop()
    assert old_pids and not any(_alive(p) for p in old_pids)

    svc = LocalOCI(data_dir=data_dir).start()
    try:
        ds = svc.client(oci.data_science.DataScienceClient)
        assert ds.get_model_deployment(active).data.lifecycle_state == "ACTIVE"
        assert ds.get_model_deployment(inactive).data.lifecycle_state == "INACTIVE"
        deadline = time.monotonic() + 60
        while not server_pids(svc, active):
            assert time.monotonic() < deadline, "the ACTIVE deployment's servers never came back"
            time.sleep(0.1)
        assert server_pids(svc, inactive) == []
        md = svc.client(oci.model_deployment.ModelDeploymentClient)
        answer = md.predict(active, {"after": "restart"})
        assert json.loads(answer.data)["echo"] == {"after": "restart"}
        assert ds.get_model_deployment(active).data.model_deployment_url.startswith(svc.endpoint)
        new_pids = server_pids(svc, active)
    finally:
        svc.stop()
    assert not any(_alive(p) for p in new_pids)


GATED_SCORE = """
import os, time

def load_model():
    flag = os.environ["RELEASE_FLAG"]
    while not os.path.exists(flag):
        time.sleep(0.02)
    return "ready"

def predict(data, model=None):
    return {"echo": data, "gate": os.environ["RELEASE_FLAG"]}
"""


@pytest.mark.slow
def test_restart_resumes_an_interrupted_create(tmp_path):
    data_dir, flag = tmp_path / "service", tmp_path / "release"
    svc = LocalOCI(data_dir=data_dir).start()
    try:
        ds = svc.client(oci.data_science.DataScienceClient)
        compartment = svc.config["tenancy"]
        project = ds.create_project(
            dsm.CreateProjectDetails(compartment_id=compartment, display_name="resume")
        ).data.id
        model_id = create_model(
            ds, compartment, project, zip_artifact(tmp_path / "a", {"score.py": GATED_SCORE})
        )
        env = dsm.DefaultModelDeploymentEnvironmentConfigurationDetails(
            environment_configuration_type="DEFAULT",
            environment_variables={"RELEASE_FLAG": str(flag)},
        )
        created = ds.create_model_deployment(
            deployment_details(compartment, project, model_id, environment=env)
        )
        dep_id, wr_id = created.data.id, created.headers["opc-work-request-id"]
        assert ds.get_model_deployment(dep_id).data.lifecycle_state == "CREATING"
    finally:
        svc.stop()
    flag.touch()

    svc = LocalOCI(data_dir=data_dir).start()
    try:
        ds = svc.client(oci.data_science.DataScienceClient)
        wr = wait_work_request(ds, wr_id)
        assert wr.status == "SUCCEEDED"
        assert ds.get_model_deployment(dep_id).data.lifecycle_state == "ACTIVE"
        md = svc.client(oci.model_deployment.ModelDeploymentClient)
        answer = json.loads(md.predict(dep_id, {"n": 1}).data)
        assert answer == {"echo": {"n": 1}, "gate": str(flag)}
        pids = server_pids(svc, dep_id)
    finally:
        svc.stop()
    assert pids and not any(_alive(p) for p in pids)
